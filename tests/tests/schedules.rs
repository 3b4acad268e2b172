//! Convergence under random schedules: two partners, one with two devices, make random edits to
//! every document type, sync at random, go offline at random (the server stops), and talk to the
//! server through a proxy that cuts connections at random points, so acknowledgements are lost,
//! pushes are retried and arrive twice, and pulls stop half-way. In the end everyone syncs, and
//! all replicas have equal heads and equal typed values, and no private entry reached the other
//! partner.
//!
//! `KINTSUGI_PROPTEST_CASES` raises the number of schedules (default 24).

use std::path::Path;

use kintsugi_core::{Answers, CodeKind, Device, DocKind, Enrolment, system_clock};
use kintsugi_server::testing::TestServer;
use kintsugi_tests::proxy::FlakyProxy;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Add {
        device: usize,
    },
    Edit {
        device: usize,
        pick: usize,
        variant: usize,
    },
    Approve {
        device: usize,
        pick: usize,
    },
    Retire {
        device: usize,
        pick: usize,
    },
    Journal {
        device: usize,
    },
    Share {
        device: usize,
        pick: usize,
    },
    CheckIn {
        device: usize,
        week: u8,
        trust: i64,
    },
    Therapy {
        device: usize,
    },
    Sync {
        device: usize,
    },
    Outage,
}

fn op() -> impl Strategy<Value = Op> {
    let device = 0..3usize;
    prop_oneof![
        device.clone().prop_map(|device| Op::Add { device }),
        (device.clone(), 0..6usize, 0..3usize).prop_map(|(device, pick, variant)| Op::Edit {
            device,
            pick,
            variant
        }),
        (device.clone(), 0..6usize).prop_map(|(device, pick)| Op::Approve { device, pick }),
        (device.clone(), 0..6usize).prop_map(|(device, pick)| Op::Retire { device, pick }),
        device.clone().prop_map(|device| Op::Journal { device }),
        (device.clone(), 0..6usize).prop_map(|(device, pick)| Op::Share { device, pick }),
        (device.clone(), 1..4u8, 1..=10i64).prop_map(|(device, week, trust)| Op::CheckIn {
            device,
            week,
            trust
        }),
        device.clone().prop_map(|device| Op::Therapy { device }),
        device.clone().prop_map(|device| Op::Sync { device }),
        device.prop_map(|device| Op::Sync { device }),
        Just(Op::Outage),
    ]
}

const VARIANTS: [&str; 3] = [" (revised)", "Absolutely ", ", always"];

fn enrolment<'a>(dir: &'a Path, url: &'a str, name: &'a str) -> Enrolment<'a> {
    Enrolment {
        dir,
        server_url: url,
        member_name: name,
        device_name: "phone",
        ca_cert_pem: None,
        clock: system_clock(),
    }
}

/// Applies one op; refusals (e.g. editing a retired boundary) and failed syncs are part of life.
async fn apply(
    op: &Op,
    devices: &[Device],
    server: &mut TestServer,
    down: &mut bool,
    counter: &mut usize,
) {
    *counter += 1;
    let n = *counter;
    let pick = |device: &Device, i: usize| {
        let list = device.boundaries().expect("list");
        (!list.is_empty()).then(|| list[i % list.len()].clone())
    };
    match *op {
        Op::Add { device } => {
            devices[device]
                .add_boundary(&format!("boundary {n}"), "general")
                .expect("add");
        }
        Op::Edit {
            device,
            pick: i,
            variant,
        } => {
            if let Some(b) = pick(&devices[device], i) {
                let text = match variant {
                    1 => format!("{}{}", VARIANTS[1], b.text),
                    v => format!("{}{}", b.text, VARIANTS[v]),
                };
                let _ = devices[device].edit_boundary(&b.id, &text);
            }
        }
        Op::Approve { device, pick: i } => {
            if let Some(b) = pick(&devices[device], i) {
                let _ = devices[device].approve_boundary(&b.id);
            }
        }
        Op::Retire { device, pick: i } => {
            if let Some(b) = pick(&devices[device], i) {
                let _ = devices[device].retire_boundary(&b.id);
            }
        }
        Op::Journal { device } => {
            let owner = if device == 2 { "bob" } else { "alice" };
            devices[device]
                .write_journal(&format!("{owner} private {n}"), Some(3), &[])
                .expect("journal");
        }
        Op::Share { device, pick: i } => {
            let entries = devices[device].journal().expect("journal");
            if !entries.is_empty() {
                devices[device]
                    .share_journal(&entries[i % entries.len()].id)
                    .expect("share");
            }
        }
        Op::CheckIn {
            device,
            week,
            trust,
        } => {
            let answers = Answers {
                trust,
                conversations: 2,
                closeness: Some(5),
                forgiveness: None,
                note: format!("n{n}"),
            };
            devices[device]
                .check_in(Some(&format!("2026-W{week:02}")), answers)
                .expect("check in");
        }
        Op::Therapy { device } => {
            devices[device]
                .log_therapy(Some("2026-03-02"), &[], "")
                .expect("therapy");
        }
        Op::Sync { device } => {
            let _ = devices[device].sync().await;
        }
        Op::Outage => {
            if *down {
                server.start_again().await;
            } else {
                server.stop().await.expect("the server stopped cleanly");
            }
            *down = !*down;
        }
    }
}

async fn run_schedule(ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::builder()
        .data(root.path().join("server"))
        .start()
        .await;
    let proxy = FlakyProxy::start(server.addr(), seed, 0.35, 6000).await;
    let url = proxy.url();
    let (a, t, b) = (
        root.path().join("alice"),
        root.path().join("tablet"),
        root.path().join("bob"),
    );
    let alice = Device::init(enrolment(&a, &url, "Alice"))
        .await
        .expect("init");
    let code = alice
        .invite(CodeKind::Device)
        .await
        .expect("invite")
        .encode();
    let tablet = Device::join(enrolment(&t, &url, "Alice"), &code)
        .await
        .expect("link");
    let code = alice
        .invite(CodeKind::Partner)
        .await
        .expect("invite")
        .encode();
    let bob = Device::join(enrolment(&b, &url, "Bob"), &code)
        .await
        .expect("join");
    let devices = [alice, tablet, bob];

    proxy.set_cutting(true);
    let (mut down, mut counter) = (false, 0);
    for op in &ops {
        apply(op, &devices, &mut server, &mut down, &mut counter).await;
    }
    proxy.set_cutting(false);
    if std::env::var_os("KINTSUGI_SCHEDULE_REPORT").is_some() {
        eprintln!(
            "schedule of {} ops: {} connections cut",
            ops.len(),
            proxy.cuts()
        );
    }
    if down {
        server.start_again().await;
    }
    for _ in 0..2 {
        for device in &devices {
            device
                .sync()
                .await
                .map_err(|e| TestCaseError::fail(format!("final sync: {e}")))?;
        }
    }

    for kind in [DocKind::Agreement, DocKind::Checkins, DocKind::Shared] {
        let heads: Vec<_> = devices
            .iter()
            .map(|d| d.heads(kind).expect("heads"))
            .collect();
        prop_assert!(
            heads.iter().all(|h| *h == heads[0]),
            "{} diverged",
            kind.name()
        );
    }
    prop_assert_eq!(
        devices[0].heads(DocKind::Journal).expect("heads"),
        devices[1].heads(DocKind::Journal).expect("heads")
    );
    let typed = |d: &Device| {
        let boundaries: Vec<_> = d
            .boundaries()
            .expect("list")
            .into_iter()
            .map(|b| (b.id, b.text, b.status, b.approved_by))
            .collect();
        let checkins: Vec<_> = d
            .checkins()
            .expect("checkins")
            .into_iter()
            .map(|c| (c.name, c.week, c.trust, c.note))
            .collect();
        let shared: Vec<_> = d
            .shared_entries()
            .expect("shared")
            .into_iter()
            .map(|e| (e.id, e.text, e.shared_by))
            .collect();
        let therapy = d.therapy_sessions().expect("therapy").len();
        (boundaries, checkins, shared, therapy)
    };
    prop_assert_eq!(typed(&devices[0]), typed(&devices[2]));
    prop_assert_eq!(typed(&devices[1]), typed(&devices[2]));
    prop_assert_eq!(
        devices[0].journal().expect("j").len(),
        devices[1].journal().expect("j").len()
    );
    let bob_journal = devices[2].journal().expect("journal");
    prop_assert!(
        bob_journal.iter().all(|e| e.text.starts_with("bob ")),
        "alice's private entry reached bob"
    );
    let alice_journal = devices[0].journal().expect("journal");
    prop_assert!(
        alice_journal.iter().all(|e| e.text.starts_with("alice ")),
        "bob's private entry reached alice"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("KINTSUGI_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_replica_converges_under_faulty_random_schedules(ops in proptest::collection::vec(op(), 1..30), seed in any::<u64>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(run_schedule(ops, seed))?;
    }
}
