//! Epoch keys opened from a real roster: each device reads from its first epoch on, walks back
//! through every epoch before it, and a revoked device holds no epoch started after it.

#![allow(clippy::expect_used)]

use kintsugi_proto::v1::roster_entry::Body;
use kintsugi_proto::v1::{Genesis, RecoveryKeys};

use super::*;
use crate::ids::{DeviceId, MemberId, SpaceId};
use crate::key_store::DeviceSecrets;
use crate::roster::{Author, device_keys, sign_entry};

struct Phone {
    id: DeviceId,
    keys: DeviceSecrets,
}

fn phone() -> Phone {
    Phone {
        id: DeviceId::random(),
        keys: DeviceSecrets::generate(),
    }
}

/// Signs `body` by `by`, starting new epochs for `audiences` whose keys `by` holds in `held`.
fn write(
    roster: &mut Roster,
    by: &Phone,
    body: Body,
    held: &mut EpochKeys,
    audiences: &[EpochAudience],
) {
    let author = Author::Device(by.id);
    let plain = sign_entry(
        roster.len(),
        &roster.head(),
        author,
        body.clone(),
        Vec::new(),
        &by.keys,
    );
    let after = roster.preview(&plain).expect("the body holds");
    let mut rotations = Vec::new();
    for audience in audiences {
        let key = SecretKey::random();
        let previous = held.latest(*audience).map(|(e, k)| (e, k.clone()));
        let previous = previous.as_ref().map(|(e, k)| (*e, k));
        rotations.push(new_rotation(&after, *audience, &key, previous).expect("sealed"));
        held.insert(*audience, after.epochs(*audience).len() as u64, key);
    }
    let signed = sign_entry(
        roster.len(),
        &roster.head(),
        author,
        body,
        rotations,
        &by.keys,
    );
    roster.apply(&signed).expect("the entry holds");
}

#[test]
fn devices_walk_back_through_every_epoch_and_a_revoked_one_holds_none_after() {
    let (space, member) = (SpaceId::random(), MemberId::random());
    let (alice, tablet, recovery) = (phone(), phone(), DeviceSecrets::generate());
    let mut roster = Roster::new(space);
    let mut alice_keys = EpochKeys::default();
    let genesis = Body::Genesis(Genesis {
        space_id: space.as_bytes().to_vec(),
        member_id: member.as_bytes().to_vec(),
        device: Some(device_keys(alice.id, &alice.keys)),
        recovery: Some(RecoveryKeys {
            signing_key: recovery.verifying_key().to_bytes().to_vec(),
            agreement_key: recovery.agreement_public().to_vec(),
        }),
    });
    let both = [EpochAudience::Space, EpochAudience::Member(member)];
    write(&mut roster, &alice, genesis, &mut alice_keys, &both);
    // The recovery kit enrols the tablet, which revokes alice's phone (as if it was lost).
    let recover = Body::Recover(kintsugi_proto::v1::Recover {
        member_id: member.as_bytes().to_vec(),
        device: Some(device_keys(tablet.id, &tablet.keys)),
    });
    let plain = sign_entry(
        1,
        &roster.head(),
        Author::Recovery(member),
        recover.clone(),
        Vec::new(),
        &recovery,
    );
    let after = roster.preview(&plain).expect("a recovery");
    let rotations: Vec<_> = both
        .iter()
        .map(|a| {
            let (e, k) = alice_keys.latest(*a).expect("held");
            new_rotation(&after, *a, &SecretKey::random(), Some((e, k))).expect("sealed")
        })
        .collect();
    let signed = sign_entry(
        1,
        &roster.head(),
        Author::Recovery(member),
        recover,
        rotations,
        &recovery,
    );
    roster.apply(&signed).expect("the recovery holds");

    let open = |p: &Phone, r: &Roster| {
        EpochKeys::unlock(r, Recipient::Device(p.id), p.keys.agreement_secret(), [])
    };
    let tablet_keys = open(&tablet, &roster);
    for audience in both {
        assert!(
            tablet_keys.key(audience, 0).is_some(),
            "walked back to epoch 0"
        );
        assert!(tablet_keys.key(audience, 1).is_some(), "its own epoch");
    }
    assert_eq!(
        tablet_keys.key(EpochAudience::Space, 0),
        alice_keys.key(EpochAudience::Space, 0)
    );
    let kit = EpochKeys::unlock(
        &roster,
        Recipient::Recovery(member),
        recovery.agreement_secret(),
        [],
    );
    assert!(
        kit.key(EpochAudience::Member(member), 1).is_some(),
        "the kit reads every epoch"
    );

    // The lost phone holds epoch 0 only: no epoch started at or after its revocation opens.
    let mut tablet_held = tablet_keys.clone();
    let rotate = Body::Rotate(kintsugi_proto::v1::Rotate {});
    write(&mut roster, &tablet, rotate, &mut tablet_held, &both);
    let stolen = open(&alice, &roster);
    assert!(stolen.key(EpochAudience::Space, 0).is_some());
    assert!(stolen.key(EpochAudience::Space, 1).is_none());
    assert!(stolen.key(EpochAudience::Space, 2).is_none());
    assert!(
        open(&tablet, &roster)
            .key(EpochAudience::Space, 2)
            .is_some()
    );
}
