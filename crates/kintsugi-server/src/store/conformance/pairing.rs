//! Conformance: invites, devices and revocation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub fn invites_are_single_use(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let link = invite(store.as_ref(), &f, InviteKind::Device, NOW + 60);
    let token = DeviceToken::generate();
    match redeem(store.as_ref(), &link, &link.secret, NOW, &token) {
        Redeemed::Joined {
            space_id,
            member_id,
            kind,
            ..
        } => {
            assert_eq!(
                (space_id, member_id, kind),
                (f.space, f.member, InviteKind::Device)
            );
        }
        other => panic!("expected a joined device, got {other:?}"),
    }
    let again = redeem(
        store.as_ref(),
        &link,
        &link.secret,
        NOW,
        &DeviceToken::generate(),
    );
    assert_eq!(again, Redeemed::Unknown, "an invite works once");
    let linked = store.device_by_token_hash(&token.hash()).unwrap().unwrap();
    assert_eq!((linked.member_id, linked.revoked), (f.member, false));
    assert_eq!(store.member_count(f.space).unwrap(), 1);

    let partner = invite(store.as_ref(), &f, InviteKind::Partner, NOW + 60);
    let late_partner = invite(store.as_ref(), &f, InviteKind::Partner, NOW + 60);
    let joined = redeem(
        store.as_ref(),
        &partner,
        &partner.secret,
        NOW,
        &DeviceToken::generate(),
    );
    assert!(
        matches!(joined, Redeemed::Joined { kind: InviteKind::Partner, member_id, .. } if member_id != f.member)
    );
    assert_eq!(store.member_count(f.space).unwrap(), 2);
    let third = redeem(
        store.as_ref(),
        &late_partner,
        &late_partner.secret,
        NOW,
        &DeviceToken::generate(),
    );
    assert_eq!(third, Redeemed::SpaceFull);

    let expiring = invite(store.as_ref(), &f, InviteKind::Device, NOW + 60);
    let expired = redeem(
        store.as_ref(),
        &expiring,
        &expiring.secret,
        NOW + 60,
        &DeviceToken::generate(),
    );
    assert_eq!(expired, Redeemed::Expired);
    let after = redeem(
        store.as_ref(),
        &expiring,
        &expiring.secret,
        NOW,
        &DeviceToken::generate(),
    );
    assert_eq!(after, Redeemed::Unknown, "an expired invite is deleted");
}

pub fn wrong_invite_secrets_are_counted(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let wrong = [0u8; 32];
    let patient = invite(store.as_ref(), &f, InviteKind::Device, NOW + 60);
    for _ in 0..2 {
        let attempt = redeem(
            store.as_ref(),
            &patient,
            &wrong,
            NOW,
            &DeviceToken::generate(),
        );
        assert_eq!(attempt, Redeemed::WrongSecret);
    }
    let right = redeem(
        store.as_ref(),
        &patient,
        &patient.secret,
        NOW,
        &DeviceToken::generate(),
    );
    assert!(
        matches!(right, Redeemed::Joined { .. }),
        "two typos do not burn the invite"
    );
    let guessed = invite(store.as_ref(), &f, InviteKind::Device, NOW + 60);
    for _ in 0..3 {
        redeem(
            store.as_ref(),
            &guessed,
            &wrong,
            NOW,
            &DeviceToken::generate(),
        );
    }
    let right = redeem(
        store.as_ref(),
        &guessed,
        &guessed.secret,
        NOW,
        &DeviceToken::generate(),
    );
    assert_eq!(
        right,
        Redeemed::Unknown,
        "the limit of failed attempts deletes the invite"
    );
}

pub fn revoked_devices_stay_listed(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let link = invite(store.as_ref(), &f, InviteKind::Device, NOW + 60);
    let laptop_token = DeviceToken::generate();
    let Redeemed::Joined {
        device_id: laptop, ..
    } = redeem(store.as_ref(), &link, &link.secret, NOW, &laptop_token)
    else {
        panic!("the device invite works");
    };
    let partner = invite(store.as_ref(), &f, InviteKind::Partner, NOW + 60);
    let Redeemed::Joined {
        device_id: partner_phone,
        member_id: partner_member,
        ..
    } = redeem(
        store.as_ref(),
        &partner,
        &partner.secret,
        NOW,
        &DeviceToken::generate(),
    )
    else {
        panic!("the partner invite works");
    };
    assert_eq!(
        store
            .revoke_device(f.space, f.member, f.device, laptop)
            .unwrap(),
        Revocation::Revoked { cascade: vec![] }
    );
    assert_eq!(
        store
            .revoke_device(f.space, f.member, f.device, laptop)
            .unwrap(),
        Revocation::AlreadyRevoked
    );
    let theirs = store
        .revoke_device(f.space, f.member, f.device, partner_phone)
        .unwrap();
    assert_eq!(theirs, Revocation::OtherMember);
    let unknown = store
        .revoke_device(f.space, f.member, f.device, DeviceId::random())
        .unwrap();
    assert_eq!(unknown, Revocation::NotFound);
    let other_space = store
        .revoke_device(SpaceId::random(), partner_member, f.device, partner_phone)
        .unwrap();
    assert_eq!(other_space, Revocation::NotFound);
    let devices = store.list_devices(f.space).unwrap();
    assert_eq!(devices.len(), 3);
    let revoked: Vec<DeviceId> = devices
        .iter()
        .filter(|d| d.revoked)
        .map(|d| d.device_id)
        .collect();
    assert_eq!(revoked, [laptop]);
    let founder = devices.iter().find(|d| d.device_id == f.device).unwrap();
    assert_eq!(founder.sealed_member_name, b"sealed member");
    assert_eq!(founder.sealed_device_name, b"sealed device");
    let by_token = store
        .device_by_token_hash(&laptop_token.hash())
        .unwrap()
        .unwrap();
    assert!(
        by_token.revoked,
        "a revoked token is still recognised, as revoked"
    );
    assert!(
        store
            .device_by_token_hash(&DeviceToken::generate().hash())
            .unwrap()
            .is_none()
    );
}

pub fn space_ids_are_unique(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let again = store.create_space(NewSpace {
        space_id: f.space,
        member_id: MemberId::random(),
        device_id: DeviceId::random(),
        token_hash: DeviceToken::generate().hash(),
        sealed_member_name: Vec::new(),
        sealed_device_name: Vec::new(),
        recovery_key: some_recovery_key(),
        now: at(NOW),
    });
    assert!(matches!(again, Err(StoreError::SpaceExists)), "{again:?}");
    assert_eq!(
        store.list_devices(f.space).unwrap().len(),
        1,
        "the first space is untouched"
    );
}

/// An invite records the device that made it; once that device is revoked, the invite adds
/// nobody: revoking deletes it, and one stored after the revocation (it raced it) is refused.
pub fn invites_of_a_revoked_device_are_void(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let link = invite(s, &f, InviteKind::Device, NOW + 60);
    let Redeemed::Joined {
        device_id: phone, ..
    } = redeem(s, &link, &link.secret, NOW, &DeviceToken::generate())
    else {
        panic!("the device invite works");
    };
    let from_phone = invite_from(s, &f, phone, InviteKind::Device, NOW + 60);
    let partner_from_phone = invite_from(s, &f, phone, InviteKind::Partner, NOW + 60);
    let from_founder = invite(s, &f, InviteKind::Device, NOW + 60);
    assert_eq!(
        s.revoke_device(f.space, f.member, f.device, phone).unwrap(),
        Revocation::Revoked { cascade: vec![] }
    );
    for code in [&from_phone, &partner_from_phone] {
        let token = DeviceToken::generate();
        assert_eq!(
            redeem(s, code, &code.secret, NOW, &token),
            Redeemed::Unknown,
            "revoking a device deletes its invites"
        );
        assert!(s.device_by_token_hash(&token.hash()).unwrap().is_none());
    }
    let token = DeviceToken::generate();
    let kept = redeem(s, &from_founder, &from_founder.secret, NOW, &token);
    assert!(
        matches!(kept, Redeemed::Joined { .. }),
        "other devices' invites stay: {kept:?}"
    );

    let late = invite_from(s, &f, phone, InviteKind::Device, NOW + 60);
    assert_eq!(
        redeem(s, &late, &[0u8; 32], NOW, &DeviceToken::generate()),
        Redeemed::WrongSecret,
        "the secret is checked first"
    );
    let token = DeviceToken::generate();
    assert_eq!(
        redeem(s, &late, &late.secret, NOW, &token),
        Redeemed::InviterRevoked
    );
    assert!(s.device_by_token_hash(&token.hash()).unwrap().is_none());
    assert_eq!(
        redeem(s, &late, &late.secret, NOW, &DeviceToken::generate()),
        Redeemed::Unknown,
        "a refused invite is deleted"
    );
    let leftover = invite_from(s, &f, phone, InviteKind::Device, NOW + 60);
    assert_eq!(
        s.revoke_device(f.space, f.member, f.device, phone).unwrap(),
        Revocation::AlreadyRevoked
    );
    assert_eq!(
        redeem(
            s,
            &leftover,
            &leftover.secret,
            NOW,
            &DeviceToken::generate()
        ),
        Redeemed::Unknown,
        "revoking again clears what a first revocation left"
    );
    let listed = s.device(f.space, phone).unwrap().expect("still listed");
    assert!(listed.revoked);
}

/// A member links at most `MAX_DEVICES_PER_MEMBER` live devices; the invite that would pass the
/// cap waits, and works once a device is revoked. The partner is not counted against it.
pub fn a_member_links_a_bounded_number_of_devices(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    add_partner(s, &f);
    let mut linked = Vec::new();
    for _ in 1..MAX_DEVICES_PER_MEMBER {
        let link = invite(s, &f, InviteKind::Device, NOW + 60);
        match redeem(s, &link, &link.secret, NOW, &DeviceToken::generate()) {
            Redeemed::Joined { device_id, .. } => linked.push(device_id),
            other => panic!("a device within the cap links: {other:?}"),
        }
    }
    let over = invite(s, &f, InviteKind::Device, NOW + 60);
    let token = DeviceToken::generate();
    assert_eq!(
        redeem(s, &over, &over.secret, NOW, &token),
        Redeemed::TooManyDevices
    );
    s.revoke_device(f.space, f.member, f.device, linked[0])
        .unwrap();
    assert!(matches!(
        redeem(s, &over, &over.secret, NOW, &token),
        Redeemed::Joined { .. }
    ));
}
