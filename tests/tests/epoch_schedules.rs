//! Key epochs under random schedules: three devices (Alice's phone, a tablet of hers that is
//! linked, revoked and linked anew, and Bob's phone) edit, sync, rotate keys (two at once, too),
//! at random. In the end every device that is still in the space holds the same roster and the
//! same current epoch and the same agreement, none set anything aside, and every envelope the
//! server holds that a device accepted was written by a device the roster admits for that
//! envelope's epoch.
//!
//! `KINTSUGI_PROPTEST_CASES` raises the number of schedules (default 6).

use kintsugi_core::roster::EpochAudience;
use kintsugi_core::{CodeKind, Device, DocKind};
use kintsugi_tests::World;
use kintsugi_tests::server_data::{copy_server_data, envelopes_in, roster_in};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Edit { device: usize },
    Sync { device: usize },
    Rotate { device: usize },
    RotateTogether,
    LinkTablet,
    RevokeTablet,
}

fn op() -> impl Strategy<Value = Op> {
    let device = 0..3usize;
    prop_oneof![
        3 => device.clone().prop_map(|device| Op::Edit { device }),
        3 => device.clone().prop_map(|device| Op::Sync { device }),
        1 => device.prop_map(|device| Op::Rotate { device }),
        1 => Just(Op::RotateTogether),
        1 => Just(Op::LinkTablet),
        1 => Just(Op::RevokeTablet),
    ]
}

/// Alice, her tablet (when linked and not revoked), Bob.
struct Couple {
    alice: Device,
    tablet: Option<Device>,
    revoked: Vec<Device>,
    bob: Device,
    tablets: usize,
}

impl Couple {
    fn device(&self, slot: usize) -> Option<&Device> {
        match slot {
            0 => Some(&self.alice),
            1 => self.tablet.as_ref(),
            _ => Some(&self.bob),
        }
    }

    fn live(&self) -> Vec<&Device> {
        [Some(&self.alice), self.tablet.as_ref(), Some(&self.bob)]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Applies one op; what the network or the rules refuse (a sync of a revoked tablet) is part of
/// the schedule.
async fn apply(op: &Op, couple: &mut Couple, world: &World, n: usize) {
    match op {
        Op::Edit { device } => {
            if let Some(d) = couple.device(*device) {
                let _ = d.add_boundary(&format!("boundary {n}"), "general");
            }
        }
        Op::Sync { device } => {
            if let Some(d) = couple.device(*device) {
                let _ = d.sync().await;
            }
        }
        Op::Rotate { device } => {
            if let Some(d) = couple.device(*device) {
                d.rotate_keys().await.expect("a rotation");
            }
        }
        Op::RotateTogether => {
            let (a, b) = tokio::join!(couple.alice.rotate_keys(), couple.bob.rotate_keys());
            a.expect("alice's rotation");
            b.expect("bob's rotation");
        }
        Op::LinkTablet if couple.tablet.is_none() => {
            couple.tablets += 1;
            let home = format!("tablet-{}", couple.tablets);
            let tablet = world
                .join(&couple.alice, CodeKind::Device, &home, "Alice")
                .await;
            couple.tablet = Some(tablet);
        }
        Op::RevokeTablet => {
            if let Some(tablet) = couple.tablet.take() {
                let id = tablet.identity().device.to_string();
                couple.alice.revoke(&id).await.expect("the revocation");
                couple.revoked.push(tablet);
            }
        }
        Op::LinkTablet => {}
    }
}

async fn run_schedule(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    let mut couple = Couple {
        alice,
        tablet: None,
        revoked: Vec::new(),
        bob,
        tablets: 0,
    };
    for (n, op) in ops.iter().enumerate() {
        apply(op, &mut couple, &world, n).await;
    }
    for _ in 0..2 {
        for device in couple.live() {
            device.sync().await.expect("a device in the space syncs");
        }
    }
    let live = couple.live();
    let mut shown = Vec::new();
    for device in &live {
        let verification = device.verification().await.expect("verify");
        shown.push((verification.fingerprint, verification.epoch));
        let aside = device.set_aside().expect("set aside");
        prop_assert!(
            aside.is_empty(),
            "an honest device's envelope was set aside: {aside:?}"
        );
    }
    prop_assert!(
        shown.windows(2).all(|w| w[0] == w[1]),
        "rosters differ: {shown:?}"
    );
    let heads: Vec<_> = live
        .iter()
        .map(|d| d.heads(DocKind::Agreement).expect("heads"))
        .collect();
    prop_assert!(heads.windows(2).all(|w| w[0] == w[1]), "agreements differ");

    let space = couple.alice.identity().space;
    let doc = couple.alice.doc_id(DocKind::Agreement);
    let copy = tempfile::tempdir().expect("a temp dir");
    copy_server_data(&mut world, copy.path()).await;
    let roster = roster_in(copy.path(), space);
    for envelope in envelopes_in(copy.path(), space, doc) {
        let device = kintsugi_core::ids::DeviceId::from_slice(&envelope.device_id).expect("id");
        prop_assert!(
            roster.may_author(device, EpochAudience::Space, envelope.key_epoch),
            "device {device} wrote under epoch {}, which the roster does not admit it to",
            envelope.key_epoch
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("KINTSUGI_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(6),
        ..ProptestConfig::default()
    })]

    #[test]
    fn devices_converge_on_one_roster_and_epoch_and_accept_only_admitted_writers(ops in proptest::collection::vec(op(), 1..16)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(run_schedule(ops))?;
    }
}
