//! What someone holding a copy of the server's data folder reads out of it: the envelopes of a
//! document as devices receive them, and the roster the log makes.

use std::path::Path;

use kintsugi_core::ids::{DocId as CoreDocId, SpaceId as CoreSpaceId};
use kintsugi_core::roster::{ROSTER_DOC, Roster};
use kintsugi_proto::v1::{Envelope, EnvelopeKind, SignedRosterEntry};
use kintsugi_server::store::{DocId, LogStore, ServerSeq, SledStore, SpaceId};

use crate::World;

/// Every envelope of `doc` in the server data folder `data` (the server stopped).
pub fn envelopes_in(data: &Path, space: CoreSpaceId, doc: CoreDocId) -> Vec<Envelope> {
    let store = SledStore::open(data).expect("the data folder opens");
    let page = store
        .read_envelopes(
            SpaceId(space.0),
            DocId(*doc.as_bytes()),
            ServerSeq(0),
            100_000,
            usize::MAX,
        )
        .expect("read the log");
    let kind = if doc == ROSTER_DOC {
        EnvelopeKind::Roster
    } else {
        EnvelopeKind::Change
    };
    page.envelopes
        .into_iter()
        .map(|sequenced| {
            let e = sequenced.envelope;
            Envelope {
                device_id: e.device_id.as_bytes().to_vec(),
                client_seq: e.client_seq,
                kind: kind as i32,
                nonce: e.nonce,
                ciphertext: e.ciphertext,
                server_seq: sequenced.server_seq.0,
                signature: e.signature,
                key_epoch: e.key_epoch,
            }
        })
        .collect()
}

/// The roster as the server data folder `data` holds it.
pub fn roster_in(data: &Path, space: CoreSpaceId) -> Roster {
    let entries: Vec<SignedRosterEntry> = envelopes_in(data, space, ROSTER_DOC)
        .iter()
        .map(|e| prost::Message::decode(e.ciphertext.as_slice()).expect("a roster entry"))
        .collect();
    Roster::replay(space, &entries)
}

/// Copies the server's data folder into `into`, with the server stopped, and starts it again.
pub async fn copy_server_data(world: &mut World, into: &Path) {
    world.server.stop().await.expect("the server stops");
    copy_dir(world.server.data(), into);
    world.server.start_again().await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
