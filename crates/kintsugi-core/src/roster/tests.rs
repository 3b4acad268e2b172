//! The roster's rules, entry by entry, and what a server that rewrites the log gets.

#![allow(clippy::expect_used)]

use kintsugi_proto::v1::roster_entry::Body;
use kintsugi_proto::v1::{AddDevice, Genesis, Invite, InviteKind, Leave, RecoveryKeys, Revoke};

use super::entry::{device_keys, invite_signing_input};
use super::*;
use crate::key_store::DeviceSecrets;
use crate::keys::SecretKey;

/// A space's log as the tests write it, with every key they need.
struct Log {
    roster: Roster,
    entries: Vec<SignedRosterEntry>,
}

struct Phone {
    id: DeviceId,
    member: MemberId,
    keys: DeviceSecrets,
}

fn recovery_keys(secrets: &DeviceSecrets) -> RecoveryKeys {
    RecoveryKeys {
        signing_key: secrets.verifying_key().to_bytes().to_vec(),
        agreement_key: secrets.agreement_public().to_vec(),
    }
}

impl Log {
    fn start() -> (Log, Phone, DeviceSecrets) {
        let space = SpaceId::random();
        let phone = Phone {
            id: DeviceId::random(),
            member: MemberId::random(),
            keys: DeviceSecrets::generate(),
        };
        let recovery = DeviceSecrets::generate();
        let genesis = Body::Genesis(Genesis {
            space_id: space.as_bytes().to_vec(),
            member_id: phone.member.as_bytes().to_vec(),
            device: Some(device_keys(phone.id, &phone.keys)),
            recovery: Some(recovery_keys(&recovery)),
        });
        let mut log = Log {
            roster: Roster::new(space),
            entries: Vec::new(),
        };
        log.push(Author::Device(phone.id), genesis, &phone.keys)
            .expect("the genesis");
        (log, phone, recovery)
    }

    /// Signs `body` with fresh key epochs for every audience its rules require (their keys
    /// are random: these tests are about who may do what, `epoch_keys` about the keys).
    fn sign(&self, author: Author, body: Body, signer: &DeviceSecrets) -> SignedRosterEntry {
        let (len, head) = (self.roster.len(), self.roster.head());
        let plain = sign_entry(len, &head, author, body.clone(), Vec::new(), signer);
        let Ok(after) = self.roster.preview(&plain) else {
            return plain;
        };
        let rotations = self
            .roster
            .required_epochs(author, &body)
            .into_iter()
            .filter_map(|audience| {
                let previous = after
                    .current_epoch(audience)
                    .map(|e| (e, SecretKey::random()));
                let previous = previous.as_ref().map(|(e, k)| (*e, k));
                crate::epoch_keys::new_rotation(&after, audience, &SecretKey::random(), previous)
                    .ok()
            })
            .collect();
        sign_entry(len, &head, author, body, rotations, signer)
    }

    fn push(&mut self, author: Author, body: Body, signer: &DeviceSecrets) -> Result<()> {
        let signed = self.sign(author, body, signer);
        self.push_signed(signed)
    }

    fn push_signed(&mut self, signed: SignedRosterEntry) -> Result<()> {
        self.roster.apply(&signed)?;
        self.entries.push(signed);
        Ok(())
    }

    /// `by` invites, and a new device of `member` (a new member for a partner) joins.
    fn join(&mut self, by: &Phone, kind: InviteKind, member: MemberId) -> Result<Phone> {
        let invite_id = rand::random::<[u8; 16]>().to_vec();
        let invite_key = DeviceSecrets::generate();
        let invite = Body::Invite(Invite {
            invite_id: invite_id.clone(),
            kind: kind as i32,
            invite_key: invite_key.verifying_key().to_bytes().to_vec(),
            welcome: Vec::new(),
        });
        self.push(Author::Device(by.id), invite, &by.keys)?;
        let phone = Phone {
            id: DeviceId::random(),
            member,
            keys: DeviceSecrets::generate(),
        };
        let keys = device_keys(phone.id, &phone.keys);
        let invite_signature = invite_key
            .sign(&invite_signing_input(
                &self.roster.head(),
                self.roster.len(),
                &invite_id,
                member.as_bytes(),
                &keys,
            ))
            .to_vec();
        let add = Body::AddDevice(AddDevice {
            invite_id,
            member_id: member.as_bytes().to_vec(),
            device: Some(keys),
            invite_signature,
            recovery: (kind == InviteKind::Partner)
                .then(|| recovery_keys(&DeviceSecrets::generate())),
        });
        self.push(Author::Device(phone.id), add, &phone.keys)?;
        Ok(phone)
    }

    fn revoke(&mut self, by: &Phone, target: DeviceId) -> Result<()> {
        let body = Body::Revoke(Revoke {
            device_id: target.as_bytes().to_vec(),
        });
        self.push(Author::Device(by.id), body, &by.keys)
    }
}

#[test]
fn a_couple_and_their_devices_replay_to_the_same_roster() {
    let (mut log, alice, _) = Log::start();
    let tablet = log
        .join(&alice, InviteKind::Device, alice.member)
        .expect("a device link");
    let bob = log
        .join(&alice, InviteKind::Partner, MemberId::random())
        .expect("a partner");
    assert!(log.roster.admits(tablet.id) && log.roster.admits(bob.id));
    assert_eq!(log.roster.members().count(), 2);
    let replayed = Roster::replay(log.roster.space(), &log.entries);
    assert_eq!(replayed, log.roster);
    assert_eq!(replayed.safety_number(), log.roster.safety_number());
}

#[test]
fn a_third_member_is_refused() {
    let (mut log, alice, _) = Log::start();
    log.join(&alice, InviteKind::Partner, MemberId::random())
        .expect("a partner");
    let third = log.join(&alice, InviteKind::Partner, MemberId::random());
    assert!(third.is_err());
}

#[test]
fn a_server_cannot_add_a_device_without_the_invite_key() {
    let (mut log, alice, _) = Log::start();
    let invite_key = DeviceSecrets::generate();
    let invite = Body::Invite(Invite {
        invite_id: vec![7; 16],
        kind: InviteKind::Device as i32,
        invite_key: invite_key.verifying_key().to_bytes().to_vec(),
        welcome: Vec::new(),
    });
    log.push(Author::Device(alice.id), invite, &alice.keys)
        .expect("the invite");
    // The server's own device, countersigned by a key of its own making.
    let intruder = DeviceSecrets::generate();
    let id = DeviceId::random();
    let keys = device_keys(id, &intruder);
    let input = invite_signing_input(
        &log.roster.head(),
        log.roster.len(),
        &[7; 16],
        alice.member.as_bytes(),
        &keys,
    );
    let forged = DeviceSecrets::generate().sign(&input);
    let add = Body::AddDevice(AddDevice {
        invite_id: vec![7; 16],
        member_id: alice.member.as_bytes().to_vec(),
        device: Some(keys),
        invite_signature: forged.to_vec(),
        recovery: None,
    });
    let before = log.roster.clone();
    assert!(log.push(Author::Device(id), add, &intruder).is_err());
    assert_eq!(log.roster, before, "a refused entry changes nothing");
}

#[test]
fn an_entry_the_server_changed_or_moved_is_passed_over_with_what_rests_on_it() {
    let (mut log, alice, _) = Log::start();
    let tablet = log
        .join(&alice, InviteKind::Device, alice.member)
        .expect("a device link");
    let space = log.roster.space();
    let replay = |entries: &[SignedRosterEntry]| Roster::replay(space, entries);
    let mut changed = log.entries.clone();
    changed[1].entry[3] ^= 1;
    let roster = replay(&changed);
    assert!(
        !roster.admits(tablet.id),
        "a changed byte breaks the signature"
    );
    assert!(
        roster.admits(alice.id) && roster.len() == 3,
        "positions are still used"
    );
    let mut dropped = log.entries.clone();
    dropped.remove(1);
    assert!(
        !replay(&dropped).admits(tablet.id),
        "a dropped entry breaks the chain"
    );
    let mut swapped = log.entries.clone();
    swapped.swap(1, 2);
    assert!(
        !replay(&swapped).admits(tablet.id),
        "reordered entries break the chain"
    );
    let other = Roster::replay(SpaceId::random(), &log.entries);
    assert!(!other.started(), "another space's log starts nothing");
    for roster in [replay(&changed), replay(&dropped), replay(&swapped)] {
        assert_ne!(roster.safety_number(), log.roster.safety_number());
    }
    log.revoke(&alice, tablet.id)
        .expect("alice's first phone revokes the tablet");
}

#[test]
fn revocation_follows_who_enrolled_whom_and_cascades() {
    let (mut log, alice, _) = Log::start();
    let tablet = log
        .join(&alice, InviteKind::Device, alice.member)
        .expect("tablet");
    let laptop = log
        .join(&tablet, InviteKind::Device, alice.member)
        .expect("laptop via tablet");
    let watch = log
        .join(&alice, InviteKind::Device, alice.member)
        .expect("watch");
    assert!(
        log.revoke(&tablet, alice.id).is_err(),
        "a later device cannot revoke the first"
    );
    assert!(
        log.revoke(&tablet, watch.id).is_err(),
        "nor one it did not enrol"
    );
    assert!(log.revoke(&tablet, tablet.id).is_err(), "nor itself");
    let bob = log
        .join(&alice, InviteKind::Partner, MemberId::random())
        .expect("bob");
    assert!(
        log.revoke(&bob, alice.id).is_err(),
        "a partner cannot revoke the other's devices"
    );
    log.revoke(&alice, tablet.id)
        .expect("the first device revokes the tablet");
    assert!(
        !log.roster.admits(laptop.id),
        "the laptop it enrolled goes with it"
    );
    assert!(log.roster.admits(watch.id));
    assert!(
        log.revoke(&laptop, watch.id).is_err(),
        "a revoked device signs nothing"
    );
}

#[test]
fn the_recovery_key_enrols_a_new_first_device_and_revokes_the_old() {
    let (mut log, alice, recovery) = Log::start();
    let fresh = Phone {
        id: DeviceId::random(),
        member: alice.member,
        keys: DeviceSecrets::generate(),
    };
    let recover = Body::Recover(kintsugi_proto::v1::Recover {
        member_id: alice.member.as_bytes().to_vec(),
        device: Some(device_keys(fresh.id, &fresh.keys)),
    });
    let author = Author::Recovery(alice.member);
    assert!(
        log.push(author, recover.clone(), &alice.keys).is_err(),
        "signed by another key"
    );
    log.push(author, recover, &recovery).expect("the recovery");
    assert!(
        log.roster.admits(fresh.id) && !log.roster.admits(alice.id),
        "the recovery revokes the old phone"
    );
    log.join(&fresh, InviteKind::Partner, MemberId::random())
        .expect("the new phone invites");
}

#[test]
fn leaving_revokes_every_device_of_the_member() {
    let (mut log, alice, _) = Log::start();
    let bob = log
        .join(&alice, InviteKind::Partner, MemberId::random())
        .expect("bob");
    let leave = Body::Leave(Leave {
        member_id: bob.member.as_bytes().to_vec(),
    });
    assert!(
        log.push(Author::Device(alice.id), leave.clone(), &alice.keys)
            .is_err(),
        "only bob leaves"
    );
    log.push(Author::Device(bob.id), leave, &bob.keys)
        .expect("bob leaves");
    assert!(!log.roster.admits(bob.id));
    assert_eq!(log.roster.members().count(), 1);
}

#[test]
fn the_safety_number_changes_with_every_entry() {
    let (mut log, alice, _) = Log::start();
    let before = log.roster.safety_number();
    log.join(&alice, InviteKind::Device, alice.member)
        .expect("tablet");
    let after = log.roster.safety_number();
    assert_ne!(before, after);
    let digits: String = after.as_str().split(' ').collect();
    assert_eq!((digits.len(), after.as_str().split(' ').count()), (60, 12));
}

#[test]
fn who_reads_changes_only_with_a_new_epoch() {
    let (mut log, alice, _) = Log::start();
    let tablet = log
        .join(&alice, InviteKind::Device, alice.member)
        .expect("a device link");
    let space = EpochAudience::Space;
    assert_eq!(
        log.roster.current_epoch(space),
        Some(1),
        "the join started one"
    );
    let revoke = Body::Revoke(Revoke {
        device_id: tablet.id.as_bytes().to_vec(),
    });
    let bare = sign_entry(
        log.roster.len(),
        &log.roster.head(),
        Author::Device(alice.id),
        revoke.clone(),
        Vec::new(),
        &alice.keys,
    );
    let refused = log
        .push_signed(bare)
        .expect_err("a revocation without a new epoch");
    assert!(
        refused.to_string().contains("without a new epoch"),
        "{refused}"
    );
    log.revoke(&alice, tablet.id).expect("with new epochs");
    assert_eq!(log.roster.current_epoch(space), Some(2));
    assert_eq!(
        log.roster
            .current_epoch(EpochAudience::Member(alice.member)),
        Some(2)
    );
    let sealed_to: Vec<Recipient> = log.roster.epochs(space)[2]
        .sealed
        .iter()
        .filter_map(|s| recipient_of(s).ok())
        .collect();
    assert!(!sealed_to.contains(&Recipient::Device(tablet.id)));
    assert!(sealed_to.contains(&Recipient::Recovery(alice.member)));
}

#[test]
fn a_revoked_device_writes_under_no_later_epoch_and_a_new_one_under_no_earlier() {
    let (mut log, alice, _) = Log::start();
    let tablet = log
        .join(&alice, InviteKind::Device, alice.member)
        .expect("a device link");
    let space = EpochAudience::Space;
    assert!(log.roster.may_author(tablet.id, space, 1));
    assert!(
        !log.roster.may_author(tablet.id, space, 0),
        "joined after epoch 0 began"
    );
    log.revoke(&alice, tablet.id).expect("revoked");
    assert!(
        log.roster.may_author(tablet.id, space, 1),
        "its history stands"
    );
    assert!(!log.roster.may_author(tablet.id, space, 2));
    assert!(log.roster.may_author(alice.id, space, 2));
    let member = EpochAudience::Member(alice.member);
    assert!(log.roster.may_author(alice.id, member, 0));
    let bob = log
        .join(&alice, InviteKind::Partner, MemberId::random())
        .expect("bob");
    assert!(
        !log.roster.may_author(bob.id, member, 2),
        "a partner never writes alice's private documents"
    );
}

#[test]
fn a_departure_leaves_the_space_epoch_owed_until_the_partner_renews_it() {
    let (mut log, alice, _) = Log::start();
    let bob = log
        .join(&alice, InviteKind::Partner, MemberId::random())
        .expect("bob");
    let leave = Body::Leave(Leave {
        member_id: bob.member.as_bytes().to_vec(),
    });
    log.push(Author::Device(bob.id), leave, &bob.keys)
        .expect("bob leaves");
    assert!(log.roster.epoch_owed(EpochAudience::Space));
    let after = log.roster.clone();
    let rotations = [EpochAudience::Space, EpochAudience::Member(alice.member)]
        .into_iter()
        .map(|audience| {
            let previous = after.current_epoch(audience).expect("an epoch");
            crate::epoch_keys::new_rotation(
                &after,
                audience,
                &SecretKey::random(),
                Some((previous, &SecretKey::random())),
            )
            .expect("a rotation")
        })
        .collect();
    let rotate = sign_entry(
        log.roster.len(),
        &log.roster.head(),
        Author::Device(alice.id),
        Body::Rotate(kintsugi_proto::v1::Rotate {}),
        rotations,
        &alice.keys,
    );
    log.push_signed(rotate).expect("alice renews the epoch");
    assert!(!log.roster.epoch_owed(EpochAudience::Space));
}

#[test]
fn a_partner_cannot_start_an_epoch_of_the_other_members_documents() {
    let (mut log, alice, _) = Log::start();
    let bob = log
        .join(&alice, InviteKind::Partner, MemberId::random())
        .expect("bob");
    let audiences = [
        EpochAudience::Space,
        EpochAudience::Member(bob.member),
        EpochAudience::Member(alice.member),
    ];
    let rotations = audiences
        .into_iter()
        .map(|audience| {
            let previous = log.roster.current_epoch(audience).expect("an epoch");
            crate::epoch_keys::new_rotation(
                &log.roster,
                audience,
                &SecretKey::random(),
                Some((previous, &SecretKey::random())),
            )
            .expect("a rotation")
        })
        .collect();
    let forged = sign_entry(
        log.roster.len(),
        &log.roster.head(),
        Author::Device(bob.id),
        Body::Rotate(kintsugi_proto::v1::Rotate {}),
        rotations,
        &bob.keys,
    );
    let refused = log.push_signed(forged).expect_err("alice's epoch is hers");
    assert!(
        refused.to_string().contains("another member's documents"),
        "{refused}"
    );
}

#[test]
fn a_departure_or_an_invite_starts_no_epoch() {
    let (mut log, alice, _) = Log::start();
    let bob = log
        .join(&alice, InviteKind::Partner, MemberId::random())
        .expect("bob");
    let with_epoch = |log: &Log, by: &Phone, body: Body| {
        let rotation = crate::epoch_keys::new_rotation(
            &log.roster,
            EpochAudience::Space,
            &SecretKey::random(),
            Some((1, &SecretKey::random())),
        )
        .expect("a rotation");
        let (len, head) = (log.roster.len(), log.roster.head());
        sign_entry(
            len,
            &head,
            Author::Device(by.id),
            body,
            vec![rotation],
            &by.keys,
        )
    };
    let leave = Body::Leave(Leave {
        member_id: bob.member.as_bytes().to_vec(),
    });
    let refused = log
        .push_signed(with_epoch(&log, &bob, leave))
        .expect_err("the leaver would know the key that shuts it out");
    assert!(
        refused.to_string().contains("may not start any"),
        "{refused}"
    );
    let invite = Body::Invite(Invite {
        invite_id: vec![9; 16],
        kind: InviteKind::Device as i32,
        invite_key: DeviceSecrets::generate()
            .verifying_key()
            .to_bytes()
            .to_vec(),
        welcome: Vec::new(),
    });
    let refused = log
        .push_signed(with_epoch(&log, &alice, invite))
        .expect_err("the welcome would miss the epoch");
    assert!(
        refused.to_string().contains("may not start any"),
        "{refused}"
    );
}
