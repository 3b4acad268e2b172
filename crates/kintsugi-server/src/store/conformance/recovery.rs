//! Conformance: recovery keys, replacing them, and recovering a member with one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// A recovery of `f`'s founding member with its key, issued at `issued_at`.
fn recovery(f: &Founded, issued_at: i64, token: &DeviceToken) -> Recovery {
    Recovery {
        space_id: f.space,
        member_id: f.member,
        key: f.recovery_key,
        issued_at: at(issued_at),
        new_device_id: DeviceId::random(),
        token_hash: token.hash(),
        sealed_device_name: b"sealed new phone".to_vec(),
        now: at(issued_at),
    }
}

/// Links a device to `f`'s founding member through `by`; returns it and its token.
fn link(store: &dyn Store, f: &Founded, by: DeviceId) -> (DeviceId, DeviceToken) {
    let code = invite_from(store, f, by, InviteKind::Device, NOW + 60);
    let token = DeviceToken::generate();
    match redeem(store, &code, &code.secret, NOW, &token) {
        Redeemed::Joined { device_id, .. } => (device_id, token),
        other => panic!("the device link works: {other:?}"),
    }
}

fn live(store: &dyn Store, f: &Founded, member: MemberId) -> Vec<DeviceId> {
    store
        .list_devices(f.space)
        .unwrap()
        .into_iter()
        .filter(|d| d.member_id == member && !d.revoked)
        .map(|d| d.device_id)
        .collect()
}

pub fn recovery_keys_are_recorded_per_member(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let founder = s.recovery_key(f.space, f.member).unwrap();
    assert_eq!(
        founder,
        Some(MemberRecovery {
            key: f.recovery_key,
            last_issued_at: None
        })
    );
    let partner_key = some_recovery_key();
    let code = invite(s, &f, InviteKind::Partner, NOW + 60);
    let token = DeviceToken::generate();
    let joined = redeem_with(s, &code, &code.secret, NOW, &token, Some(partner_key));
    let Redeemed::Joined { member_id, .. } = joined else {
        panic!("the partner joins: {joined:?}");
    };
    let partner = s.recovery_key(f.space, member_id).unwrap().unwrap();
    assert_eq!(partner.key, partner_key);
    assert!(
        s.recovery_key(f.space, MemberId::random())
            .unwrap()
            .is_none()
    );
    assert!(
        s.recovery_key(SpaceId::random(), f.member)
            .unwrap()
            .is_none()
    );
}

/// A partner must bring a recovery key and a linked device must not; a redemption that gets it
/// wrong changes nothing, and the invite still works.
pub fn a_partner_brings_a_recovery_key_and_a_linked_device_none(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let partner = invite(s, &f, InviteKind::Partner, NOW + 60);
    let token = DeviceToken::generate();
    let without = redeem_with(s, &partner, &partner.secret, NOW, &token, None);
    assert_eq!(without, Redeemed::RecoveryKeyMissing);
    assert!(s.device_by_token_hash(&token.hash()).unwrap().is_none());
    assert_eq!(s.member_count(f.space).unwrap(), 1);
    let device = invite(s, &f, InviteKind::Device, NOW + 60);
    let with = redeem_with(
        s,
        &device,
        &device.secret,
        NOW,
        &token,
        Some(some_recovery_key()),
    );
    assert_eq!(with, Redeemed::RecoveryKeyUnexpected);
    assert!(s.device_by_token_hash(&token.hash()).unwrap().is_none());
    for code in [&partner, &device] {
        let joined = redeem(s, code, &code.secret, NOW, &DeviceToken::generate());
        assert!(matches!(joined, Redeemed::Joined { .. }), "{joined:?}");
    }
    assert_eq!(
        s.recovery_key(f.space, f.member).unwrap().unwrap().key,
        f.recovery_key,
        "a linked device leaves its member's key alone"
    );
}

/// Only a live root device of the member replaces the member's recovery key.
pub fn only_a_root_device_replaces_the_recovery_key(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let (_, partner_device, _) = add_partner(s, &f);
    let (laptop, _) = link(s, &f, f.device);
    let new_key = some_recovery_key();
    for by in [laptop, partner_device, DeviceId::random()] {
        let refused = s.set_recovery_key(f.space, f.member, by, new_key).unwrap();
        assert_eq!(refused, RecoveryKeyChange::NotRootDevice);
    }
    let key = |s: &dyn Store| s.recovery_key(f.space, f.member).unwrap().unwrap().key;
    assert_eq!(key(s), f.recovery_key, "refusals change nothing");
    let set = s.set_recovery_key(f.space, f.member, f.device, new_key);
    assert_eq!(set.unwrap(), RecoveryKeyChange::Replaced);
    assert_eq!(key(s), new_key);
    let gone = s.set_recovery_key(f.space, MemberId::random(), f.device, new_key);
    assert!(matches!(gone, Err(StoreError::UnknownMember)), "{gone:?}");
}

/// A recovery revokes every live device of the member with its invites and enrols a new root
/// device; the partner's devices stay.
pub fn a_recovery_replaces_every_device_of_the_member(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let (partner_member, partner_device, _) = add_partner(s, &f);
    let (laptop, laptop_token) = link(s, &f, f.device);
    let (tablet, _) = link(s, &f, laptop);
    let pending = invite_from(s, &f, laptop, InviteKind::Device, NOW + 60);
    let token = DeviceToken::generate();
    let recovered = s.recover_member(recovery(&f, NOW, &token)).unwrap();
    let Recovered::Enrolled { mut revoked } = recovered else {
        panic!("the member recovers: {recovered:?}");
    };
    let mut expected = vec![f.device, laptop, tablet];
    revoked.sort();
    expected.sort();
    assert_eq!(revoked, expected);
    for old in [&f.token, &laptop_token] {
        assert!(
            s.device_by_token_hash(&old.hash())
                .unwrap()
                .unwrap()
                .revoked
        );
    }
    let new = s.device_by_token_hash(&token.hash()).unwrap().unwrap();
    assert_eq!(
        (new.member_id, new.revoked, new.enrolled_by),
        (f.member, false, None)
    );
    assert_eq!(new.sealed_device_name, b"sealed new phone");
    assert_eq!(live(s, &f, f.member), [new.device_id]);
    assert_eq!(live(s, &f, partner_member), [partner_device]);
    let late = redeem(s, &pending, &pending.secret, NOW, &DeviceToken::generate());
    assert_eq!(late, Redeemed::Unknown, "the old devices' invites are gone");
    let recorded = s.recovery_key(f.space, f.member).unwrap().unwrap();
    assert_eq!(recorded.last_issued_at, Some(at(NOW)));
    let set = s.set_recovery_key(f.space, f.member, new.device_id, some_recovery_key());
    assert_eq!(
        set.unwrap(),
        RecoveryKeyChange::Replaced,
        "the new device is a root"
    );
}

/// A replayed or earlier request, another key and another member are refused and change
/// nothing; a later request recovers again.
pub fn a_recovery_is_refused_when_replayed_or_not_the_members(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let first = s.recover_member(recovery(&f, NOW, &DeviceToken::generate()));
    let Recovered::Enrolled { .. } = first.unwrap() else {
        panic!("the first recovery works");
    };
    let devices = s.list_devices(f.space).unwrap();
    let other_key = Recovery {
        key: some_recovery_key(),
        ..recovery(&f, NOW + 10, &DeviceToken::generate())
    };
    let stranger = Recovery {
        member_id: MemberId::random(),
        ..recovery(&f, NOW + 10, &DeviceToken::generate())
    };
    let elsewhere = Recovery {
        space_id: SpaceId::random(),
        ..recovery(&f, NOW + 10, &DeviceToken::generate())
    };
    let refusals = [
        (
            recovery(&f, NOW, &DeviceToken::generate()),
            Recovered::Replayed,
        ),
        (
            recovery(&f, NOW - 1, &DeviceToken::generate()),
            Recovered::Replayed,
        ),
        (other_key, Recovered::NotValid),
        (stranger, Recovered::NotValid),
        (elsewhere, Recovered::NotValid),
    ];
    for (request, expected) in refusals {
        let token_hash = request.token_hash;
        assert_eq!(s.recover_member(request).unwrap(), expected);
        assert!(s.device_by_token_hash(&token_hash).unwrap().is_none());
    }
    assert_eq!(s.list_devices(f.space).unwrap(), devices, "nothing changed");
    let again = s.recover_member(recovery(&f, NOW + 1, &DeviceToken::generate()));
    assert!(matches!(again.unwrap(), Recovered::Enrolled { revoked } if revoked.len() == 1));
}

/// A member who left has no recovery key any more, and cannot be recovered.
pub fn a_member_who_left_cannot_be_recovered(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    add_partner(s, &f);
    s.leave_space(f.space, f.member).unwrap();
    assert!(s.recovery_key(f.space, f.member).unwrap().is_none());
    let token = DeviceToken::generate();
    let refused = s.recover_member(recovery(&f, NOW, &token)).unwrap();
    assert_eq!(refused, Recovered::NotValid);
    assert!(s.device_by_token_hash(&token.hash()).unwrap().is_none());
}
