//! Conformance: appending to and reading from a document's log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub fn appends_get_sequential_seqs(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    let envs = (1..=3).map(|i| envelope(f.device, i, "change")).collect();
    let first = append(
        store.as_ref(),
        &f,
        doc,
        Audience::Shared,
        f.member,
        envs,
        NOW,
    )
    .unwrap();
    assert_eq!(seqs(&first), [1, 2, 3]);
    assert_eq!(first.fresh.len(), 3);
    let envs = (4..=5).map(|i| envelope(f.device, i, "change")).collect();
    let second = append(
        store.as_ref(),
        &f,
        doc,
        Audience::Shared,
        f.member,
        envs,
        NOW,
    )
    .unwrap();
    assert_eq!(seqs(&second), [4, 5]);
    assert_eq!(
        store.doc_meta(f.space, doc).unwrap().unwrap().head_seq,
        ServerSeq(5)
    );
    let other = DocId::random();
    let envs = vec![envelope(f.device, 6, "other")];
    let third = append(
        store.as_ref(),
        &f,
        other,
        Audience::Shared,
        f.member,
        envs,
        NOW,
    )
    .unwrap();
    assert_eq!(seqs(&third), [1], "every document counts from 1");
    let listed = read_all(store.as_ref(), &f, doc, 0);
    let listed: Vec<u64> = listed.iter().map(|e| e.server_seq.0).collect();
    assert_eq!(listed, [1, 2, 3, 4, 5]);
    assert_eq!(store.list_docs(f.space).unwrap().len(), 2);
}

pub fn retried_append_is_stored_once(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    let e = |i| envelope(f.device, i, &format!("change {i}"));
    append(
        store.as_ref(),
        &f,
        doc,
        Audience::Shared,
        f.member,
        vec![e(1), e(2)],
        NOW,
    )
    .unwrap();
    let retry = append(
        store.as_ref(),
        &f,
        doc,
        Audience::Shared,
        f.member,
        vec![e(1), e(2), e(3)],
        NOW,
    )
    .unwrap();
    assert_eq!(seqs(&retry), [1, 2, 3]);
    assert_eq!(retry.fresh.len(), 1, "only the new envelope is fresh");
    assert_eq!(retry.fresh[0].server_seq, ServerSeq(3));
    let retried: Vec<u64> = retry.retried.iter().map(|e| e.server_seq.0).collect();
    assert_eq!(
        retried,
        [1, 2],
        "the retried envelopes come back with their seqs"
    );
    assert_eq!(retry.retried[1].envelope, e(2));
    assert_eq!(read_all(store.as_ref(), &f, doc, 0).len(), 3);
    let twice = append(
        store.as_ref(),
        &f,
        doc,
        Audience::Shared,
        f.member,
        vec![e(4), e(4)],
        NOW,
    )
    .unwrap();
    assert_eq!(
        seqs(&twice),
        [4, 4],
        "a duplicate inside one push is stored once"
    );
    assert_eq!((twice.fresh.len(), twice.retried.len()), (1, 0));
    let forged = envelope(f.device, 2, "something else");
    let refused = append(
        store.as_ref(),
        &f,
        doc,
        Audience::Shared,
        f.member,
        vec![e(5), forged],
        NOW,
    );
    assert!(
        matches!(refused, Err(StoreError::ClientSeqReused { client_seq: 2 })),
        "{refused:?}"
    );
    assert_eq!(
        store.doc_meta(f.space, doc).unwrap().unwrap().head_seq,
        ServerSeq(4),
        "a refused push stores nothing, not even its valid envelopes"
    );
}

pub fn audience_is_fixed_by_first_push(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let (partner, _, _) = add_partner(store.as_ref(), &f);
    let journal = DocId::random();
    let e = |i| envelope(f.device, i, "journal");
    append(
        store.as_ref(),
        &f,
        journal,
        Audience::Private,
        f.member,
        vec![e(1)],
        NOW,
    )
    .unwrap();
    let meta = store.doc_meta(f.space, journal).unwrap().unwrap();
    assert_eq!((meta.audience, meta.owner), (Audience::Private, f.member));
    assert!(meta.readable_by(f.member) && !meta.readable_by(partner));
    let shared = append(
        store.as_ref(),
        &f,
        journal,
        Audience::Shared,
        f.member,
        vec![e(2)],
        NOW,
    );
    assert!(matches!(
        shared,
        Err(StoreError::AudienceFixed {
            recorded: Audience::Private
        })
    ));
    let by_partner = append(
        store.as_ref(),
        &f,
        journal,
        Audience::Private,
        partner,
        vec![e(3)],
        NOW,
    );
    assert!(
        matches!(by_partner, Err(StoreError::PrivateDocument)),
        "{by_partner:?}"
    );
    let agreement = DocId::random();
    append(
        store.as_ref(),
        &f,
        agreement,
        Audience::Shared,
        f.member,
        vec![e(4)],
        NOW,
    )
    .unwrap();
    let by_partner = append(
        store.as_ref(),
        &f,
        agreement,
        Audience::Shared,
        partner,
        vec![e(5)],
        NOW,
    );
    assert_eq!(
        seqs(&by_partner.unwrap()),
        [2],
        "shared documents take every member's changes"
    );
}

pub fn reads_page_by_count_and_bytes(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let f = found_space(store.as_ref());
    let doc = DocId::random();
    let envs = (1..=10)
        .map(|i| envelope(f.device, i, &"x".repeat(100)))
        .collect();
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
    let page = store
        .read_envelopes(f.space, doc, ServerSeq(0), 4, usize::MAX)
        .unwrap();
    let got: Vec<u64> = page.envelopes.iter().map(|e| e.server_seq.0).collect();
    assert_eq!((got, page.more), (vec![1, 2, 3, 4], true));
    let page = store
        .read_envelopes(f.space, doc, ServerSeq(8), 4, usize::MAX)
        .unwrap();
    let got: Vec<u64> = page.envelopes.iter().map(|e| e.server_seq.0).collect();
    assert_eq!((got, page.more), (vec![9, 10], false));
    let page = store
        .read_envelopes(f.space, doc, ServerSeq(0), 100, 1)
        .unwrap();
    assert_eq!(
        (page.envelopes.len(), page.more),
        (1, true),
        "a tiny budget still yields one"
    );
    let one = page.envelopes[0].envelope.wire_size();
    let page = store
        .read_envelopes(f.space, doc, ServerSeq(0), 100, 3 * one)
        .unwrap();
    assert_eq!((page.envelopes.len(), page.more), (3, true));
    let page = store
        .read_envelopes(f.space, doc, ServerSeq(10), 100, usize::MAX)
        .unwrap();
    assert!(page.envelopes.is_empty() && !page.more);
    let unknown = store.read_envelopes(f.space, DocId::random(), ServerSeq(0), 100, usize::MAX);
    assert!(unknown.unwrap().envelopes.is_empty());
}

/// What the server relays but cannot check, the author's signature and the envelope's key
/// epoch, comes back from the log and from both snapshot slots exactly as it was stored; an
/// envelope without them (from before epochs) comes back without them.
pub fn envelopes_keep_their_signature_and_key_epoch(open: Open<'_>) {
    let dir = ScratchDir::new();
    let store = open(dir.path());
    let s = store.as_ref();
    let f = found_space(s);
    let doc = DocId::random();
    let sealed = Envelope {
        key_epoch: u64::MAX,
        ..envelope(f.device, 1, "change")
    };
    let plain = Envelope {
        signature: Vec::new(),
        key_epoch: 0,
        ..envelope(f.device, 2, "older change")
    };
    let both = vec![sealed.clone(), plain.clone()];
    append(s, &f, doc, Audience::Shared, f.member, both, NOW).unwrap();
    let read: Vec<Envelope> = read_all(s, &f, doc, 0)
        .into_iter()
        .map(|e| e.envelope)
        .collect();
    assert_eq!(read, [sealed, plain]);
    let whole = Envelope {
        key_epoch: 7,
        ..envelope(f.device, 3, "whole document")
    };
    s.put_snapshot(NewSnapshot {
        space_id: f.space,
        doc_id: doc,
        member_id: f.member,
        covers_seq: ServerSeq(2),
        envelope: whole.clone(),
        now: at(NOW),
        retention: secs(100),
        quota_bytes: u64::MAX,
    })
    .unwrap();
    let candidate = s.candidate_snapshot(f.space, doc).unwrap().unwrap();
    assert_eq!(candidate.envelope, whole);
    assert!(endorse(s, &f, doc));
    s.compact(f.space, doc, at(NOW + 101), secs(100)).unwrap();
    let serving = s.snapshot(f.space, doc).unwrap().expect("promoted");
    assert_eq!(serving.envelope, whole);
}
