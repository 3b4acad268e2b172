//! A backup taken online while a partner keeps writing restores to a server from which a newly
//! linked device receives everything acknowledged before the backup.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kintsugi_core::CodeKind;
use kintsugi_proto::admin::v1::BackupRequest;
use kintsugi_proto::admin::v1::admin_service_client::AdminServiceClient;
use kintsugi_tests::World;
use tokio::sync::watch;
use tonic::transport::Channel;

/// Acknowledged writes the backup must keep; waiting for them is bounded by this.
const ACKED_BEFORE_BACKUP: usize = 3;
const DEADLINE: Duration = Duration::from_secs(60);

/// Waits until the writer has had more than `after` writes acknowledged; fails at the deadline.
async fn wait_for_acks(acked: &mut watch::Receiver<Vec<String>>, after: usize) -> Vec<String> {
    match tokio::time::timeout(DEADLINE, acked.wait_for(|texts| texts.len() > after)).await {
        Ok(Ok(texts)) => texts.clone(),
        Ok(Err(_)) => panic!("the writer stopped after {after} acknowledged writes"),
        Err(_) => panic!(
            "fewer than {} writes acknowledged within {DEADLINE:?}",
            after + 1
        ),
    }
}

/// Streams an online backup of the world's server into `file` through the admin service.
async fn take_backup(world: &World, file: &Path) {
    let token =
        kintsugi_server::offline_admin::read_admin_token(world.server.data()).expect("admin token");
    let channel = Channel::from_shared(world.server.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut request = tonic::Request::new(BackupRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let mut stream = AdminServiceClient::new(channel)
        .backup(request)
        .await
        .expect("backup")
        .into_inner();
    let mut out = std::fs::File::create(file).expect("backup file");
    while let Some(chunk) = stream.message().await.expect("chunk") {
        out.write_all(&chunk.data).expect("write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_everything_acknowledged_before_it() {
    let mut world = World::new().await;
    let (alice, bob) = world.couple().await;
    for i in 0..5 {
        alice
            .add_boundary(&format!("before {i}"), "general")
            .expect("add");
    }
    alice.sync().await.expect("sync");

    // Bob keeps writing and syncing while the backup is taken.
    let bob = Arc::new(bob);
    let writing = Arc::new(AtomicBool::new(true));
    let (acked_tx, mut acked) = watch::channel(Vec::new());
    let writer = {
        let (bob, writing) = (bob.clone(), writing.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while writing.load(Ordering::SeqCst) {
                n += 1;
                let text = format!("during {n}");
                bob.add_boundary(&text, "general").expect("add");
                if bob.sync().await.is_ok() {
                    acked_tx.send_modify(|texts| texts.push(text));
                }
            }
        })
    };
    let acked_before = wait_for_acks(&mut acked, ACKED_BEFORE_BACKUP - 1).await;

    let file = world.root.path().join("backup.kbk");
    take_backup(&world, &file).await;
    // The partner's writes went on across the backup: it blocks nobody.
    wait_for_acks(&mut acked, acked_before.len()).await;
    writing.store(false, Ordering::SeqCst);
    writer.await.expect("writer");

    let restored = world.root.path().join("restored");
    kintsugi_server::offline_admin::restore(&file, &restored).expect("restore");
    world.server.restart_on(&restored).await;
    let tablet = world
        .join(&alice, CodeKind::Device, "alice-tablet", "Alice")
        .await;
    tablet
        .sync()
        .await
        .expect("the new device syncs from the restored server");
    let texts: Vec<String> = tablet
        .boundaries()
        .expect("list")
        .into_iter()
        .map(|b| b.text)
        .collect();
    for text in (0..5).map(|i| format!("before {i}")).chain(acked_before) {
        assert!(
            texts.contains(&text),
            "{text} was acknowledged before the backup but is missing"
        );
    }
}
