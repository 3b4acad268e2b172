//! Criterion benchmarks of the client core's hot paths: sealing and opening an envelope, one
//! edit on a document of 10 to 100,000 changes, loading such a document, and pulling one change.
//!
//! Run with `cargo bench -p kintsugi-tests --bench core_paths` (add `-- --quick` for a fast
//! pass); docs/performance.md holds the figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge};
use cpu_time::ProcessTime;
use criterion::{BenchmarkId, Criterion, criterion_group};
use ed25519_dalek::VerifyingKey;
use kintsugi_core::docs::agreement;
use kintsugi_core::envelope::{Authors, EnvelopeContext, open, seal};
use kintsugi_core::ids::{DeviceId, DocId, SpaceId};
use kintsugi_core::key_store::DeviceSecrets;
use kintsugi_core::keys::SecretKey;
use kintsugi_core::store::LocalStore;
use kintsugi_core::{Device, DocKind, UnixMillis};
use kintsugi_proto::v1::EnvelopeKind;
use kintsugi_tests::World;

/// Document sizes the edit and load benchmarks start from, in changes.
const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];

/// The one device every envelope in the seal/open benchmark comes from.
struct OneAuthor(VerifyingKey);

impl Authors for OneAuthor {
    fn signing_key(&self, _device: DeviceId, _epoch: u64) -> Option<VerifyingKey> {
        Some(self.0)
    }
}

fn seal_and_open(c: &mut Criterion) {
    let (key, signer) = (SecretKey::random(), DeviceSecrets::generate());
    let authors = OneAuthor(signer.verifying_key());
    let ctx = EnvelopeContext {
        space: SpaceId::random(),
        doc: DocId::random(),
        device: DeviceId::random(),
        client_seq: 1,
        kind: EnvelopeKind::Change,
        epoch: 0,
    };
    let change = vec![7u8; 200];
    c.bench_function("seal a 200-byte change", |b| {
        b.iter(|| seal(&key, &signer, &ctx, black_box(&change)))
    });
    let envelope = seal(&key, &signer, &ctx, &change);
    c.bench_function("open a 200-byte change", |b| {
        b.iter(|| {
            let keys = |_| Some(key.clone());
            open(keys, &authors, ctx.space, ctx.doc, black_box(&envelope)).expect("opens")
        })
    });
}

/// A device whose agreement holds one boundary edited by another device until the document
/// has `changes` changes, and that boundary's id.
fn device_with_history(runtime: &tokio::runtime::Runtime, changes: usize) -> (World, String) {
    let world = runtime.block_on(World::new());
    let device = runtime.block_on(world.init("Alice"));
    let (dir, doc_id) = (
        device.dir().to_path_buf(),
        device.doc_id(DocKind::Agreement),
    );
    let saved = device.export_automerge(DocKind::Agreement).expect("export");
    drop(device);
    let mut doc = Automerge::load(&saved).expect("load");
    doc.set_actor(ActorId::from([9u8; 16]));
    let id = "b0000000000000001".to_string();
    let now = UnixMillis::from_millis(1);
    let first = doc.get_changes(&[]).len();
    for n in first..changes.max(first + 1) {
        let time = CommitOptions::default().with_time(n as i64);
        doc.transact_with(
            |_| time,
            |tx| match n == first {
                true => agreement::add(tx, &id, "Phones stay unlocked", "trust", "m9", now),
                false => {
                    let text = format!("Phones stay unlocked {}", n % 97);
                    agreement::edit(tx, &id, &text, "m9", now)
                }
            },
        )
        .map_err(|failure| failure.error)
        .expect("edit");
    }
    let store = LocalStore::open(&dir).expect("store");
    store
        .replace_doc(doc_id, &doc.save(), &[], None)
        .expect("replace");
    (world, id)
}

fn edits(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("edit a boundary on a document of N changes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for size in SIZES {
        let (world, id) = device_with_history(&runtime, size);
        let device = Device::open(&world.home("Alice")).expect("open");
        let mut n = 0u64;
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                n += 1;
                device
                    .edit_boundary(&id, &format!("Phones stay unlocked, week {n}"))
                    .expect("edit")
            })
        });
    }
    group.finish();
}

/// Prints what one edit costs in CPU (this process, sled's threads included) and in wall time
/// on documents of 10 and 10,000 changes: criterion times the wall clock only, and a local
/// edit waits for its fdatasync.
fn cpu_per_edit() {
    const EDITS: u32 = 300;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for size in [10, 10_000] {
        let (world, id) = device_with_history(&runtime, size);
        let device = Device::open(&world.home("Alice")).expect("open");
        let (cpu, wall) = (ProcessTime::now(), Instant::now());
        for n in 0..EDITS {
            let text = format!("Phones stay unlocked, day {n}");
            device.edit_boundary(&id, &text).expect("edit");
        }
        let per_edit = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(EDITS);
        println!(
            "one edit on a document of {size} changes: {:.3} ms CPU, {:.3} ms wall",
            per_edit(cpu.elapsed()),
            per_edit(wall.elapsed())
        );
    }
}

fn loads(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("open a device and list the agreement of N changes");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for size in SIZES {
        let (world, _) = device_with_history(&runtime, size);
        let home = world.home("Alice");
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                Device::open(&home)
                    .expect("open")
                    .boundaries()
                    .expect("list")
            })
        });
    }
    group.finish();
}

fn pulls(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let world = runtime.block_on(World::unthrottled());
    let (alice, bob) = runtime.block_on(world.couple());
    let id = alice
        .add_boundary("Phones stay unlocked", "trust")
        .expect("add");
    runtime.block_on(kintsugi_tests::sync_all(&[&alice, &bob]));
    let mut n = 0u64;
    c.bench_function(
        "edit, push and pull one change (two syncs on loopback)",
        |b| {
            b.iter(|| {
                n += 1;
                alice
                    .edit_boundary(&id, &format!("Phones stay unlocked {n}"))
                    .expect("edit");
                runtime.block_on(alice.sync()).expect("push");
                runtime.block_on(bob.sync()).expect("pull")
            })
        },
    );
}

criterion_group!(benches, seal_and_open, edits, loads, pulls);

fn main() {
    cpu_per_edit();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
