//! The recovery kit: shown once, replaced only from the member's first device, and with it
//! alone a new device gets the member's whole history while every old device is cut off.

use kintsugi_core::{CodeKind, CoreError, Device, DocKind, Enrolment, system_clock};
use kintsugi_tests::World;

fn enrolment<'a>(dir: &'a std::path::Path, url: &'a str) -> Enrolment<'a> {
    Enrolment {
        dir,
        server_url: url,
        member_name: "(recovering)",
        device_name: "new phone",
        ca_cert_pem: None,
        clock: system_clock(),
    }
}

#[tokio::test]
async fn a_kit_is_shown_once_and_only_the_first_device_replaces_it() {
    let world = World::new().await;
    let alice = world.init("Alice").await;
    let tablet = world
        .join(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    let first = alice.take_recovery_kit().expect("the kit, once");
    let again = alice.take_recovery_kit().expect_err("shown already");
    assert!(again.to_string().contains("recovery show --new"), "{again}");
    let refused = tablet
        .new_recovery_kit()
        .await
        .expect_err("a linked device");
    assert!(
        matches!(refused, CoreError::PermissionDenied(_)),
        "{refused}"
    );
    let second = alice
        .new_recovery_kit()
        .await
        .expect("a new kit on the first device");
    assert_ne!(first, second);

    let (dir, url) = (world.home("with-old-kit"), world.server.url());
    let old = Device::recover(enrolment(&dir, &url), &first)
        .await
        .expect_err("the replaced kit");
    assert!(matches!(old, CoreError::PermissionDenied(_)), "{old}");
    alice
        .sync()
        .await
        .expect("alice is untouched by a refused kit");
}

#[tokio::test]
async fn with_the_kit_alone_a_new_device_gets_everything_and_the_old_ones_are_cut_off() {
    let world = World::new().await;
    let (alice, bob) = world.couple().await;
    let tablet = world
        .join(&alice, CodeKind::Device, "tablet", "Alice")
        .await;
    let kit = alice.take_recovery_kit().expect("the kit");
    alice
        .write_journal("only alice reads this", None, &[])
        .expect("journal");
    alice
        .add_boundary("Kept through a lost phone", "general")
        .expect("add");
    kintsugi_tests::sync_all(&[&alice, &tablet, &bob]).await;

    let (dir, url) = (world.home("alice-new"), world.server.url());
    let recovered = Device::recover(enrolment(&dir, &url), &kit)
        .await
        .expect("recovery");
    assert_eq!(recovered.identity().member, alice.identity().member);
    assert_eq!(
        recovered.identity().member_name,
        "Alice",
        "the name from the server"
    );
    recovered.sync().await.expect("sync");
    let journal = recovered.journal().expect("journal");
    assert!(journal.iter().any(|e| e.text == "only alice reads this"));
    assert_eq!(recovered.boundaries().expect("list").len(), 1);

    for old in [&alice, &tablet] {
        let cut = old.sync().await.expect_err("an old device");
        assert!(matches!(cut, CoreError::Unauthenticated(_)), "{cut}");
    }
    recovered
        .add_boundary("Written after recovery", "general")
        .expect("add");
    kintsugi_tests::sync_all(&[&recovered, &bob]).await;
    assert_eq!(bob.boundaries().expect("list").len(), 2);
    assert!(bob.set_aside().expect("set aside").is_empty());
    let devices = bob.devices().await.expect("devices");
    for old in [&alice, &tablet] {
        let id = old.identity().device.to_string();
        let row = devices.iter().find(|d| d.id == id).expect("listed");
        assert!(row.revoked, "{id} is revoked on bob's phone too");
    }
    let heads = |d: &Device| d.heads(DocKind::Agreement).expect("heads");
    assert_eq!(heads(&recovered), heads(&bob));
    let new_tablet = world
        .join(&recovered, CodeKind::Device, "tablet-2", "Alice")
        .await;
    new_tablet
        .sync()
        .await
        .expect("the recovered device links a new one");
    assert!(
        new_tablet
            .journal()
            .expect("journal")
            .iter()
            .any(|e| e.text == "only alice reads this")
    );
}
