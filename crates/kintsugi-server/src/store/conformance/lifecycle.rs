//! Conformance: snapshots and compaction, statistics, and surviving a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// How long a snapshot stands in these tests.
const RETENTION: i64 = 100;

fn snapshot_at(f: &Founded, doc: DocId, covers: u64, member: MemberId, now: i64) -> NewSnapshot {
    NewSnapshot {
        space_id: f.space,
        doc_id: doc,
        member_id: member,
        covers_seq: ServerSeq(covers),
        envelope: envelope(f.device, 100 + covers, "whole document"),
        now: at(now),
        retention: secs(RETENTION),
        quota_bytes: u64::MAX,
    }
}

const KEPT: SnapshotPut = SnapshotPut {
    promoted: false,
    kept: true,
};
const NOT_KEPT: SnapshotPut = SnapshotPut {
    promoted: false,
    kept: false,
};

/// `compact` at `now` with the suite's retention window.
fn compact_at(store: &dyn Store, f: &Founded, doc: DocId, now: i64) -> ServerSeq {
    store
        .compact(f.space, doc, at(now), secs(RETENTION))
        .unwrap()
}

/// `compact_all` at `now` with the suite's retention window.
fn sweep_at(store: &dyn Store, now: i64) -> u64 {
    store.compact_all(at(now), secs(RETENTION)).unwrap()
}

fn covers(snapshot: Option<StoredSnapshot>) -> Option<u64> {
    snapshot.map(|s| s.covers_seq.0)
}

fn slots(store: &dyn Store, f: &Founded, doc: DocId) -> (Option<u64>, Option<u64>) {
    (
        covers(store.snapshot(f.space, doc).unwrap()),
        covers(store.candidate_snapshot(f.space, doc).unwrap()),
    )
}

fn log_seqs(store: &dyn Store, f: &Founded, doc: DocId) -> Vec<u64> {
    read_all(store, f, doc, 0)
        .iter()
        .map(|e| e.server_seq.0)
        .collect()
}

pub fn snapshot_prunes_only_after_retention(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    let envs = (1..=5).map(|i| envelope(f.device, i, "change")).collect();
    append(
        store.as_ref(),
        &f,
        doc,
        Audience::Private,
        f.member,
        envs,
        NOW,
    )
    .unwrap();
    snapshot_puts_are_checked(store.as_ref(), &f, doc);
    compaction_waits_for_the_window(store.as_ref(), &f, doc);
    seqs_and_retries_survive_pruning(store.as_ref(), &f, doc);
}

/// A young candidate stands against older and newer puts; bad puts are refused.
fn snapshot_puts_are_checked(store: &dyn Store, f: &Founded, doc: DocId) {
    let snapshot = |covers, member| snapshot_at(f, doc, covers, member, NOW);
    assert_eq!(store.put_snapshot(snapshot(3, f.member)).unwrap(), KEPT);
    assert!(endorse(store, f, doc));
    assert_eq!(
        store.put_snapshot(snapshot(2, f.member)).unwrap(),
        NOT_KEPT,
        "a young candidate stands"
    );
    let later = snapshot_at(f, doc, 4, f.member, NOW + RETENTION / 2);
    assert_eq!(
        store.put_snapshot(later).unwrap(),
        NOT_KEPT,
        "a newer one does not restart the window either"
    );
    let beyond = store.put_snapshot(snapshot(9, f.member));
    assert!(matches!(
        beyond,
        Err(StoreError::SnapshotBeyondHead {
            covers_seq: 9,
            head_seq: 5
        })
    ));
    let stranger = store.put_snapshot(snapshot(4, MemberId::random()));
    assert!(
        matches!(stranger, Err(StoreError::PrivateDocument)),
        "{stranger:?}"
    );
    let mut unknown = snapshot(1, f.member);
    unknown.doc_id = DocId::random();
    assert!(matches!(
        store.put_snapshot(unknown),
        Err(StoreError::UnknownDocument)
    ));
    assert_eq!(
        slots(store, f, doc),
        (None, Some(3)),
        "a new snapshot is only the candidate"
    );
}

/// Compaction prunes only once the candidate stood its window, and only what it covers.
fn compaction_waits_for_the_window(store: &dyn Store, f: &Founded, doc: DocId) {
    let pruned = compact_at(store, f, doc, NOW + RETENTION);
    assert_eq!(
        pruned,
        ServerSeq(0),
        "entries inside the retention window stay"
    );
    assert_eq!(log_seqs(store, f, doc), [1, 2, 3, 4, 5]);
    assert_eq!(slots(store, f, doc), (None, Some(3)));
    let pruned = compact_at(store, f, doc, NOW + RETENTION + 1);
    assert_eq!(pruned, ServerSeq(3));
    assert_eq!(
        slots(store, f, doc),
        (Some(3), None),
        "the candidate that stood its window serves"
    );
    assert_eq!(
        log_seqs(store, f, doc),
        [4, 5],
        "only what the serving snapshot covers is pruned"
    );
    let meta = store.doc_meta(f.space, doc).unwrap().unwrap();
    assert_eq!(
        (meta.pruned_through, meta.head_seq),
        (ServerSeq(3), ServerSeq(5))
    );
    assert_eq!(sweep_at(store, NOW + 10 * RETENTION), 0);
}

/// Pruning never reuses seqs, and a retry of a pruned entry is still recognised.
fn seqs_and_retries_survive_pruning(store: &dyn Store, f: &Founded, doc: DocId) {
    let e6 = vec![envelope(f.device, 6, "after compaction")];
    let after = append(store, f, doc, Audience::Private, f.member, e6, NOW).unwrap();
    assert_eq!(seqs(&after), [6], "seqs are never reused after pruning");
    let retry = vec![envelope(f.device, 1, "change")];
    let retry = append(store, f, doc, Audience::Private, f.member, retry, NOW).unwrap();
    assert_eq!(
        seqs(&retry),
        [1],
        "a retry of a pruned entry is still recognised"
    );
    assert!(retry.fresh.is_empty());
    assert_eq!(
        retry
            .retried
            .iter()
            .map(|e| e.server_seq.0)
            .collect::<Vec<_>>(),
        [1],
        "a retry hands back what it repeated, to be relayed again"
    );
}

/// The two-slot rule: a snapshot must stand the whole window as the candidate before it
/// serves and before anything it covers is pruned; what serves always covers the pruned part.
pub fn a_new_snapshot_stands_as_candidate_before_it_serves(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let doc = DocId::random();
    let envs = (1..=6).map(|i| envelope(f.device, i, "change")).collect();
    append(s, &f, doc, Audience::Shared, f.member, envs, NOW).unwrap();
    // Each offer is followed by the member's endorsement of whatever is the candidate then.
    let put = |covers, now| {
        let put = s.put_snapshot(snapshot_at(&f, doc, covers, f.member, now));
        endorse(s, &f, doc);
        put
    };
    assert_eq!(put(2, NOW).unwrap(), KEPT);

    // A snapshot that claims everything arrives once the first one has stood its window: the
    // first one serves now, and the new one only starts its own window.
    let promoted_and_kept = SnapshotPut {
        promoted: true,
        kept: true,
    };
    let t1 = NOW + RETENTION + 1;
    assert_eq!(put(6, t1).unwrap(), promoted_and_kept);
    assert_eq!(slots(s, &f, doc), (Some(2), Some(6)));
    assert_eq!(
        log_seqs(s, &f, doc),
        [1, 2, 3, 4, 5, 6],
        "put_snapshot prunes nothing itself"
    );
    assert_eq!(compact_at(s, &f, doc, t1), ServerSeq(2));
    assert_eq!(
        log_seqs(s, &f, doc),
        [3, 4, 5, 6],
        "what only the candidate covers stays"
    );
    assert_eq!(put(6, t1 + RETENTION / 2).unwrap(), NOT_KEPT);
    assert_eq!(sweep_at(s, t1 + RETENTION), 0);
    assert_eq!(slots(s, &f, doc), (Some(2), Some(6)));

    // Once the candidate has stood its window, an offer promotes it, even one not kept.
    let t2 = t1 + RETENTION + 1;
    let promoted_only = SnapshotPut {
        promoted: true,
        kept: false,
    };
    assert_eq!(put(5, t2).unwrap(), promoted_only);
    assert_eq!(slots(s, &f, doc), (Some(6), None));
    assert_eq!(compact_at(s, &f, doc, t2), ServerSeq(6));
    assert!(log_seqs(s, &f, doc).is_empty());
    assert_eq!(
        put(6, t2).unwrap(),
        NOT_KEPT,
        "a snapshot must cover more than the serving one"
    );

    // The sweep promotes too, and only what the promoted snapshot covers goes.
    let envs = (7..=8).map(|i| envelope(f.device, i, "change")).collect();
    append(s, &f, doc, Audience::Shared, f.member, envs, t2).unwrap();
    assert_eq!(put(7, t2).unwrap(), KEPT);
    assert_eq!(sweep_at(s, t2 + RETENTION), 0);
    assert_eq!(sweep_at(s, t2 + RETENTION + 1), 1);
    assert_eq!(slots(s, &f, doc), (Some(7), None));
    assert_eq!(log_seqs(s, &f, doc), [8]);
    let meta = s.doc_meta(f.space, doc).unwrap().unwrap();
    assert_eq!(meta.pruned_through, ServerSeq(7));
    assert_eq!(
        s.space_usage(f.space).unwrap(),
        s.stats().unwrap().bytes,
        "promotion and pruning keep the counter right"
    );
}

/// The log is pruned behind a snapshot only once every member who reads the document endorsed
/// that exact snapshot: one partner alone cannot make the other's data unrecoverable. A
/// candidate that stood its window without every endorsement never serves, and gives way.
pub fn only_a_snapshot_every_reader_endorsed_serves(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let (partner, partner_device, _) = add_partner(s, &f);
    let doc = DocId::random();
    let envs = (1..=4).map(|i| envelope(f.device, i, "change")).collect();
    append(s, &f, doc, Audience::Shared, f.member, envs, NOW).unwrap();
    assert_eq!(
        s.put_snapshot(snapshot_at(&f, doc, 3, f.member, NOW))
            .unwrap(),
        KEPT
    );
    assert!(endorse(s, &f, doc), "the member who stored it endorses it");
    let late = NOW + 10 * RETENTION;
    assert_eq!(compact_at(s, &f, doc, late), ServerSeq(0));
    assert_eq!(
        slots(s, &f, doc),
        (None, Some(3)),
        "one endorsement of two is not enough"
    );
    assert_eq!(log_seqs(s, &f, doc), [1, 2, 3, 4]);
    let mut wrong = s.candidate_snapshot(f.space, doc).unwrap().unwrap();
    wrong.envelope.ciphertext.push(0);
    let named_wrongly = CandidateVerdict {
        space_id: f.space,
        doc_id: doc,
        member_id: partner,
        device_id: partner_device,
        covers_seq: ServerSeq(3),
        content_hash: wrong.envelope.snapshot_hash(),
    };
    assert!(
        !s.endorse_candidate(named_wrongly).unwrap(),
        "an endorsement names the exact snapshot"
    );
    // A newer offer after the window finds the candidate unendorsed: it gives way, unserved.
    let newer = NewSnapshot {
        envelope: envelope(partner_device, 9, "newer"),
        member_id: partner,
        ..snapshot_at(&f, doc, 4, f.member, late)
    };
    assert_eq!(s.put_snapshot(newer).unwrap(), KEPT);
    assert_eq!(slots(s, &f, doc), (None, Some(4)));
    assert!(endorse_as(s, f.space, doc, (partner, partner_device)));
    assert!(endorse(s, &f, doc));
    let later = late + RETENTION + 1;
    assert_eq!(compact_at(s, &f, doc, later), ServerSeq(4));
    assert_eq!(slots(s, &f, doc), (Some(4), None));
}

/// An endorsement counts only while the device that made it is not revoked: a thief who
/// endorses a bad snapshot from a stolen phone loses that vote when the phone is revoked.
pub fn an_endorsement_from_a_revoked_device_does_not_count(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let link = invite(s, &f, InviteKind::Device, NOW + 60);
    let Redeemed::Joined {
        device_id: stolen, ..
    } = redeem(s, &link, &link.secret, NOW, &DeviceToken::generate())
    else {
        panic!("the device invite works");
    };
    let doc = DocId::random();
    let envs = (1..=3).map(|i| envelope(f.device, i, "change")).collect();
    append(s, &f, doc, Audience::Shared, f.member, envs, NOW).unwrap();
    assert_eq!(
        s.put_snapshot(snapshot_at(&f, doc, 3, f.member, NOW))
            .unwrap(),
        KEPT
    );
    assert!(endorse_as(s, f.space, doc, (f.member, stolen)));
    s.revoke_device(f.space, f.member, f.device, stolen)
        .unwrap();
    let late = NOW + RETENTION + 1;
    assert_eq!(compact_at(s, &f, doc, late), ServerSeq(0));
    assert_eq!(
        slots(s, &f, doc),
        (None, Some(3)),
        "the revoked phone's vote is void"
    );
    assert!(endorse(s, &f, doc));
    assert_eq!(compact_at(s, &f, doc, late), ServerSeq(3));
}

/// A member's device that rejects a candidate drops it, and no snapshot at that position (or
/// below) is accepted again, so the same bad snapshot cannot come back and skip the audit.
pub fn a_rejected_snapshot_cannot_come_back(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let doc = DocId::random();
    let envs = (1..=4).map(|i| envelope(f.device, i, "change")).collect();
    append(s, &f, doc, Audience::Shared, f.member, envs, NOW).unwrap();
    let bad = snapshot_at(&f, doc, 3, f.member, NOW);
    let hash = bad.envelope.snapshot_hash();
    assert_eq!(s.put_snapshot(bad.clone()).unwrap(), KEPT);
    let verdict = CandidateVerdict {
        space_id: f.space,
        doc_id: doc,
        member_id: f.member,
        device_id: f.device,
        covers_seq: ServerSeq(3),
        content_hash: hash,
    };
    assert!(
        !s.reject_candidate(CandidateVerdict {
            covers_seq: ServerSeq(2),
            ..verdict
        })
        .unwrap()
    );
    assert!(s.reject_candidate(verdict).unwrap());
    assert_eq!(slots(s, &f, doc), (None, None));
    for covers in [3, 2] {
        let again = s.put_snapshot(snapshot_at(&f, doc, covers, f.member, NOW + 1));
        assert!(
            matches!(
                again,
                Err(StoreError::SnapshotRejected {
                    rejected_through: 3,
                    ..
                })
            ),
            "{again:?}"
        );
    }
    assert!(
        !s.endorse_candidate(verdict).unwrap(),
        "nothing left to endorse"
    );
    let meta = s.doc_meta(f.space, doc).unwrap().unwrap();
    assert_eq!(meta.rejected_through, ServerSeq(3));
    assert_eq!(
        s.put_snapshot(snapshot_at(&f, doc, 4, f.member, NOW + 1))
            .unwrap(),
        KEPT
    );
}

pub fn stats_count_what_is_stored(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    assert_eq!(store.stats().unwrap(), StoreStats::default());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    let snapshot = two_documents_and_a_snapshot(store.as_ref(), &f, doc);
    let stats = store.stats().unwrap();
    let expected = StoreStats {
        spaces: 1,
        devices: 1,
        documents: 2,
        envelopes: 4,
        bytes: (4 * 24 + 3 + 4 + 2 + 5) as u64,
    };
    assert_eq!(stats, expected);
    newer_snapshots_count_until_compaction(store.as_ref(), &f, snapshot, expected);
}

/// Stores two documents (three envelopes) and an endorsed snapshot of the first; returns it.
fn two_documents_and_a_snapshot(store: &dyn Store, f: &Founded, doc: DocId) -> NewSnapshot {
    let envs = vec![envelope(f.device, 1, "abc"), envelope(f.device, 2, "defg")];
    append(store, f, doc, Audience::Shared, f.member, envs, NOW).unwrap();
    let other = vec![envelope(f.device, 3, "hi")];
    append(
        store,
        f,
        DocId::random(),
        Audience::Shared,
        f.member,
        other,
        NOW,
    )
    .unwrap();
    let snapshot = NewSnapshot {
        space_id: f.space,
        doc_id: doc,
        member_id: f.member,
        covers_seq: ServerSeq(2),
        envelope: envelope(f.device, 4, "whole"),
        now: at(NOW),
        retention: secs(10),
        quota_bytes: u64::MAX,
    };
    store.put_snapshot(snapshot.clone()).unwrap();
    assert!(endorse(store, f, doc));
    snapshot
}

/// A refused older snapshot adds nothing; a newer candidate counts beside the serving one.
fn newer_snapshots_count_until_compaction(
    store: &dyn Store,
    f: &Founded,
    snapshot: NewSnapshot,
    expected: StoreStats,
) {
    let doc = snapshot.doc_id;
    // A candidate that stood its window serves, and a newer one becomes the candidate: both
    // count until compaction prunes what the serving one covers.
    let second = NewSnapshot {
        covers_seq: ServerSeq(2),
        envelope: envelope(f.device, 5, "whole, again"),
        now: at(NOW + 20),
        retention: secs(10),
        ..snapshot
    };
    let first_again = NewSnapshot {
        covers_seq: ServerSeq(1),
        ..second.clone()
    };
    store.put_snapshot(first_again).unwrap();
    assert_eq!(store.stats().unwrap(), expected, "nothing new was kept");
    let third_doc_change = vec![envelope(f.device, 6, "xyz")];
    append(
        store,
        f,
        doc,
        Audience::Shared,
        f.member,
        third_doc_change,
        NOW,
    )
    .unwrap();
    let second = NewSnapshot {
        covers_seq: ServerSeq(3),
        ..second
    };
    store.put_snapshot(second).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.envelopes, stats.bytes),
        (6, (6 * 24 + 3 + 4 + 2 + 5 + 3 + 12) as u64)
    );
    assert_eq!(stats.bytes, store.total_usage().unwrap());
}

pub fn data_survives_close_and_reopen(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    let big = "y".repeat(1 << 20); // big enough for sled to keep it as a separate blob file
    let envs = vec![envelope(f.device, 1, "small"), envelope(f.device, 2, &big)];
    append(
        store.as_ref(),
        &f,
        doc,
        Audience::Private,
        f.member,
        envs,
        NOW,
    )
    .unwrap();
    store.flush().unwrap();
    drop(store);

    let store = open(dir.path());
    let device = store
        .device_by_token_hash(&f.token.hash())
        .unwrap()
        .unwrap();
    assert_eq!((device.space_id, device.device_id), (f.space, f.device));
    let meta = store.doc_meta(f.space, doc).unwrap().unwrap();
    assert_eq!(
        (meta.audience, meta.head_seq),
        (Audience::Private, ServerSeq(2))
    );
    let entries = read_all(store.as_ref(), &f, doc, 0);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].envelope.ciphertext.len(), big.len());
    let retry = vec![envelope(f.device, 2, &big), envelope(f.device, 3, "new")];
    let retry = append(
        store.as_ref(),
        &f,
        doc,
        Audience::Private,
        f.member,
        retry,
        NOW,
    )
    .unwrap();
    assert_eq!(seqs(&retry), [2, 3], "the dedup index survives a restart");
}
