//! Documents stay open in memory between edits: what a device shows and what it stored stay
//! the same across compaction and reopening, and `last_edit` names the edit just made.

use kintsugi_core::{Device, DocKind};
use kintsugi_tests::World;

#[tokio::test]
async fn edits_past_compaction_survive_reopening_and_last_edit_names_the_newest() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let id = alice
        .add_boundary("Phones stay open", "trust")
        .expect("add");
    // Past the 500 stored changes after which the open document is saved whole.
    for n in 0..510 {
        alice
            .edit_boundary(&id, &format!("Phones stay open, week {n}"))
            .expect("edit");
    }
    let newest = alice
        .last_edit(DocKind::Agreement)
        .expect("an edit was made");
    assert_eq!(
        alice.heads(DocKind::Agreement).expect("heads"),
        vec![newest]
    );
    let shown = alice.boundary(&id).expect("read").text;
    assert_eq!(shown, "Phones stay open, week 509");
    let home = alice.dir().to_path_buf();
    drop(alice);
    let reopened = Device::open(&home).expect("reopen");
    assert_eq!(
        reopened.boundary(&id).expect("read").text,
        shown,
        "as stored"
    );
    assert_eq!(
        reopened.last_edit(DocKind::Agreement),
        None,
        "only edits since opening"
    );
}
