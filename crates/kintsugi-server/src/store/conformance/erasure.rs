//! Conformance: quota accounting, leaving a space, export and vacuum.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn snapshot_of(f: &Founded, doc: DocId, covers: u64, text: &str, quota: u64) -> NewSnapshot {
    NewSnapshot {
        space_id: f.space,
        doc_id: doc,
        member_id: f.member,
        covers_seq: ServerSeq(covers),
        envelope: envelope(f.device, 1000 + covers, text),
        now: at(NOW),
        retention: secs(10),
        quota_bytes: quota,
    }
}

/// `snapshot_of`, offered at `now`.
fn snapshot_at(snapshot: NewSnapshot, now: i64) -> NewSnapshot {
    NewSnapshot {
        now: at(now),
        ..snapshot
    }
}

fn append_with_quota(
    store: &dyn Store,
    f: &Founded,
    doc: DocId,
    envelopes: Vec<Envelope>,
    quota: u64,
) -> Result<Appended, StoreError> {
    store.append_envelopes(AppendEnvelopes {
        space_id: f.space,
        doc_id: doc,
        audience: Audience::Shared,
        member_id: f.member,
        envelopes,
        now: at(NOW),
        quota_bytes: quota,
        expect_head: None,
    })
}

pub fn quota_counter_follows_every_write(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    // Each envelope holds 24 nonce bytes plus its text.
    let e = |i, text: &str| envelope(f.device, i, text);
    append_with_quota(store.as_ref(), &f, doc, vec![e(1, "aaaa"), e(2, "bb")], 100).unwrap();
    assert_eq!(store.space_usage(f.space).unwrap(), 24 + 4 + 24 + 2);
    let retry = append_with_quota(store.as_ref(), &f, doc, vec![e(1, "aaaa")], 54);
    assert!(retry.is_ok(), "a retry stores nothing and needs no room");
    let over = append_with_quota(
        store.as_ref(),
        &f,
        doc,
        vec![e(3, "c"), e(4, "x".repeat(30).as_str())],
        100,
    );
    assert!(
        matches!(
            over,
            Err(StoreError::QuotaExceeded {
                used: 54,
                quota: 100,
                needed: 79
            })
        ),
        "{over:?}"
    );
    assert_eq!(
        store.doc_meta(f.space, doc).unwrap().unwrap().head_seq,
        ServerSeq(2)
    );
    append_with_quota(store.as_ref(), &f, doc, vec![e(3, "c")], 100).unwrap();
    assert_eq!(store.space_usage(f.space).unwrap(), 79);
    let big = store.put_snapshot(snapshot_of(&f, doc, 3, &"s".repeat(40), 100));
    assert!(
        matches!(big, Err(StoreError::QuotaExceeded { .. })),
        "{big:?}"
    );
    let first = store
        .put_snapshot(snapshot_of(&f, doc, 2, "snap", 1000))
        .unwrap();
    assert!(first.kept);
    assert!(endorse(store.as_ref(), &f, doc));
    let young = snapshot_at(snapshot_of(&f, doc, 3, "snapshot", 1000), NOW + 5);
    assert!(!store.put_snapshot(young).unwrap().kept);
    assert_eq!(
        store.space_usage(f.space).unwrap(),
        79 + 24 + 4,
        "a snapshot that was not kept counts nothing"
    );
    let second = snapshot_at(snapshot_of(&f, doc, 3, "snapshot", 1000), NOW + 11);
    let second = store.put_snapshot(second).unwrap();
    assert!(second.promoted && second.kept);
    assert!(endorse(store.as_ref(), &f, doc));
    assert_eq!(
        store.space_usage(f.space).unwrap(),
        79 + (24 + 4) + (24 + 8),
        "the serving snapshot and the candidate both count"
    );
    store.compact(f.space, doc, at(NOW + 11), secs(10)).unwrap();
    assert_eq!(read_all(store.as_ref(), &f, doc, 0).len(), 1);
    assert_eq!(
        store.space_usage(f.space).unwrap(),
        25 + (24 + 4) + (24 + 8)
    );
    store.compact(f.space, doc, at(NOW + 22), secs(10)).unwrap();
    assert_eq!(read_all(store.as_ref(), &f, doc, 0).len(), 0);
    assert_eq!(
        store.space_usage(f.space).unwrap(),
        24 + 8,
        "a promoted snapshot replaces the serving one"
    );
    assert_eq!(
        store.stats().unwrap().bytes,
        24 + 8,
        "the counter matches a census"
    );
}

pub fn leaving_erases_the_members_private_documents_and_devices(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let (partner, partner_device, partner_token) = add_partner(store.as_ref(), &f);
    let [journal, agreement, their_journal] =
        three_documents(store.as_ref(), &f, (partner, partner_device));
    let dangling = invite(store.as_ref(), &f, InviteKind::Device, NOW + 60);

    let departure = store.leave_space(f.space, f.member).unwrap();
    assert_eq!(departure.devices, [f.device]);
    assert_eq!((departure.documents, departure.space_erased), (1, false));
    assert!(
        store
            .device_by_token_hash(&f.token.hash())
            .unwrap()
            .is_none()
    );
    what_stays_after_leaving(store.as_ref(), &f, [journal, agreement, their_journal]);
    assert!(
        store
            .device_by_token_hash(&partner_token.hash())
            .unwrap()
            .is_some()
    );
    a_member_who_left_is_refused(store.as_ref(), &f, &dangling, journal);
}

/// Stores the member's private journal, a shared agreement and the partner's private journal.
fn three_documents(
    store: &dyn Store,
    f: &Founded,
    (partner, partner_device): (MemberId, DeviceId),
) -> [DocId; 3] {
    let journal = DocId::random();
    let agreement = DocId::random();
    let mine = vec![envelope(f.device, 1, "my journal")];
    append(store, f, journal, Audience::Private, f.member, mine, NOW).unwrap();
    let shared = vec![envelope(f.device, 2, "our agreement")];
    append(store, f, agreement, Audience::Shared, f.member, shared, NOW).unwrap();
    let theirs = vec![envelope(partner_device, 1, "their journal")];
    let their_journal = DocId::random();
    append(
        store,
        f,
        their_journal,
        Audience::Private,
        partner,
        theirs,
        NOW,
    )
    .unwrap();
    [journal, agreement, their_journal]
}

/// The member's private journal is gone; the shared document and the partner's stay.
fn what_stays_after_leaving(store: &dyn Store, f: &Founded, docs: [DocId; 3]) {
    let [journal, agreement, their_journal] = docs;
    assert!(store.doc_meta(f.space, journal).unwrap().is_none());
    assert!(read_all(store, f, journal, 0).is_empty());
    assert_eq!(
        read_all(store, f, agreement, 0).len(),
        1,
        "shared documents stay"
    );
    assert_eq!(read_all(store, f, their_journal, 0).len(), 1);
    assert_eq!(store.member_count(f.space).unwrap(), 1);
}

/// The member's invites, pushes and a second leave are refused; usage matches a census.
fn a_member_who_left_is_refused(store: &dyn Store, f: &Founded, dangling: &Invite, journal: DocId) {
    let token = DeviceToken::generate();
    assert_eq!(
        redeem(store, dangling, &dangling.secret, NOW, &token),
        Redeemed::Unknown
    );
    let late = append(
        store,
        f,
        journal,
        Audience::Private,
        f.member,
        vec![envelope(f.device, 9, "x")],
        NOW,
    );
    assert!(matches!(late, Err(StoreError::UnknownMember)), "{late:?}");
    let usage = store.space_usage(f.space).unwrap();
    assert_eq!(usage, store.stats().unwrap().bytes);
    let again = store.leave_space(f.space, f.member);
    assert!(matches!(again, Err(StoreError::UnknownMember)), "{again:?}");
}

pub fn last_member_leaving_erases_the_whole_space(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let (partner, partner_device, _) = add_partner(store.as_ref(), &f);
    let other = found_space(store.as_ref());
    let agreement = both_snapshot_slots_filled(store.as_ref(), &f, (partner, partner_device));
    let kept = vec![envelope(other.device, 1, "another couple")];
    append(
        store.as_ref(),
        &other,
        DocId::random(),
        Audience::Shared,
        other.member,
        kept,
        NOW,
    )
    .unwrap();
    invite(store.as_ref(), &f, InviteKind::Partner, NOW + 60);
    let before = store.stats().unwrap();

    store.leave_space(f.space, f.member).unwrap();
    let last = store.leave_space(f.space, partner).unwrap();
    assert_eq!(last.devices, [partner_device]);
    assert_eq!((last.documents, last.space_erased), (1, true));
    nothing_of_the_space_is_left(store.as_ref(), f.space, agreement);
    let after = store.stats().unwrap();
    assert_eq!(
        (
            after.spaces,
            after.devices,
            after.documents,
            after.envelopes
        ),
        (
            before.spaces - 1,
            before.devices - 2,
            before.documents - 1,
            before.envelopes - 4
        ),
        "only the other couple's data is left"
    );
    assert_eq!(after.bytes, store.space_usage(other.space).unwrap());
    assert_eq!(after.bytes, store.total_usage().unwrap());
}

/// Stores a shared document whose serving and candidate snapshot slots are both filled.
fn both_snapshot_slots_filled(
    store: &dyn Store,
    f: &Founded,
    (partner, partner_device): (MemberId, DeviceId),
) -> DocId {
    let agreement = DocId::random();
    let envs = vec![
        envelope(f.device, 1, "shared"),
        envelope(f.device, 2, "shared too"),
    ];
    append(store, f, agreement, Audience::Shared, f.member, envs, NOW).unwrap();
    let snapshot = snapshot_of(f, agreement, 1, "whole", u64::MAX);
    store.put_snapshot(snapshot).unwrap();
    assert!(endorse(store, f, agreement));
    assert!(endorse_as(
        store,
        f.space,
        agreement,
        (partner, partner_device)
    ));
    let newer = snapshot_at(
        snapshot_of(f, agreement, 2, "whole too", u64::MAX),
        NOW + 11,
    );
    let newer = store.put_snapshot(newer).unwrap();
    assert!(newer.promoted && newer.kept, "both slots are filled");
    agreement
}

/// The erased space has no members, devices, documents, snapshots or usage.
fn nothing_of_the_space_is_left(store: &dyn Store, space: SpaceId, agreement: DocId) {
    assert!(matches!(
        store.member_count(space),
        Err(StoreError::UnknownSpace)
    ));
    assert!(store.list_devices(space).unwrap().is_empty());
    assert!(store.list_docs(space).unwrap().is_empty());
    assert!(store.snapshot(space, agreement).unwrap().is_none());
    assert!(
        store
            .candidate_snapshot(space, agreement)
            .unwrap()
            .is_none()
    );
    assert_eq!(store.space_usage(space).unwrap(), 0);
}

pub fn export_and_vacuum_keep_every_record(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    let envs = (1..=20).map(|i| envelope(f.device, i, "kept")).collect();
    append(
        store.as_ref(),
        &f,
        doc,
        Audience::Shared,
        f.member,
        envs,
        NOW,
    )
    .unwrap();
    for (covers, now) in [(10, NOW), (20, NOW + 11)] {
        let snapshot = snapshot_at(snapshot_of(&f, doc, covers, "whole", u64::MAX), now);
        store.put_snapshot(snapshot).unwrap();
        assert!(endorse(store.as_ref(), &f, doc));
    }
    let mut first = Vec::new();
    let summary = store.export(&mut first).unwrap();
    assert_eq!(summary.bytes, first.len() as u64);
    assert!(
        summary.entries >= 20 + 20 + 4,
        "log, dedup, space, member, device, token"
    );
    let before = store.stats().unwrap();
    store.vacuum().unwrap();
    assert_eq!(store.stats().unwrap(), before);
    assert_eq!(
        (
            store.snapshot(f.space, doc).unwrap().map(|s| s.covers_seq),
            store
                .candidate_snapshot(f.space, doc)
                .unwrap()
                .map(|s| s.covers_seq)
        ),
        (Some(ServerSeq(10)), Some(ServerSeq(20))),
        "both snapshot slots survive a rewrite"
    );
    assert_eq!(read_all(store.as_ref(), &f, doc, 0).len(), 20);
    assert!(
        store
            .device_by_token_hash(&f.token.hash())
            .unwrap()
            .is_some()
    );
    let more = vec![envelope(f.device, 21, "after vacuum")];
    let appended = append(
        store.as_ref(),
        &f,
        doc,
        Audience::Shared,
        f.member,
        more,
        NOW,
    )
    .unwrap();
    assert_eq!(
        seqs(&appended),
        [21],
        "the store takes writes after a vacuum"
    );
    let mut second = Vec::new();
    store.export(&mut second).unwrap();
    assert!(second.len() > first.len());
}
