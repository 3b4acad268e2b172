//! Conformance: snapshots and compaction, statistics, and surviving a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

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
    let snapshot = |covers, member| NewSnapshot {
        space_id: f.space,
        doc_id: doc,
        member_id: member,
        covers_seq: ServerSeq(covers),
        envelope: envelope(f.device, 100 + covers, "whole document"),
        now: NOW,
        quota_bytes: u64::MAX,
    };
    assert!(store.put_snapshot(snapshot(3, f.member)).unwrap());
    assert!(
        !store.put_snapshot(snapshot(2, f.member)).unwrap(),
        "an older snapshot is ignored"
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
        store.snapshot(f.space, doc).unwrap().unwrap().covers_seq,
        ServerSeq(3)
    );

    let retention = 100;
    let pruned = store
        .compact(f.space, doc, NOW + retention, retention)
        .unwrap();
    assert_eq!(
        pruned,
        ServerSeq(0),
        "entries inside the retention window stay"
    );
    assert_eq!(read_all(store.as_ref(), &f, doc, 0).len(), 5);
    let pruned = store
        .compact(f.space, doc, NOW + retention + 1, retention)
        .unwrap();
    assert_eq!(pruned, ServerSeq(3));
    let left: Vec<u64> = read_all(store.as_ref(), &f, doc, 0)
        .iter()
        .map(|e| e.server_seq.0)
        .collect();
    assert_eq!(left, [4, 5], "only what the snapshot covers is pruned");
    let meta = store.doc_meta(f.space, doc).unwrap().unwrap();
    assert_eq!(
        (meta.pruned_through, meta.head_seq),
        (ServerSeq(3), ServerSeq(5))
    );
    assert_eq!(
        store.compact_all(NOW + 10 * retention, retention).unwrap(),
        0
    );
    let e6 = vec![envelope(f.device, 6, "after compaction")];
    let after = append(
        store.as_ref(),
        &f,
        doc,
        Audience::Private,
        f.member,
        e6,
        NOW,
    )
    .unwrap();
    assert_eq!(seqs(&after), [6], "seqs are never reused after pruning");
    let retry = vec![envelope(f.device, 1, "change")];
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
    assert_eq!(
        seqs(&retry),
        [1],
        "a retry of a pruned entry is still recognised"
    );
}

pub fn stats_count_what_is_stored(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    assert_eq!(store.stats().unwrap(), StoreStats::default());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    let envs = vec![envelope(f.device, 1, "abc"), envelope(f.device, 2, "defg")];
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
    let other = vec![envelope(f.device, 3, "hi")];
    append(
        store.as_ref(),
        &f,
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
        now: NOW,
        quota_bytes: u64::MAX,
    };
    store.put_snapshot(snapshot).unwrap();
    let stats = store.stats().unwrap();
    let expected = StoreStats {
        spaces: 1,
        devices: 1,
        documents: 2,
        envelopes: 4,
        bytes: (4 * 24 + 3 + 4 + 2 + 5) as u64,
    };
    assert_eq!(stats, expected);
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
