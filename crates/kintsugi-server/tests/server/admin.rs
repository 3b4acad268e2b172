//! Operator tasks: an online backup taken while pushes run restores every acknowledged
//! envelope; offline tasks refuse a running server, a non-empty folder and a damaged file.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kintsugi_proto::admin::v1::admin_service_client::AdminServiceClient;
use kintsugi_proto::admin::v1::{BackupRequest, StatsRequest};
use kintsugi_proto::v1::{Audience, PullRequest};
use kintsugi_server::AdminError;
use kintsugi_server::testing::TestServer;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{Bearer, Clients, push_request, random16};

/// Every seq of `doc` the device can pull, in order.
async fn pull_all(device: &crate::support::TestDevice, doc: &[u8]) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        let request = PullRequest {
            doc_id: doc.to_vec(),
            after_seq: seqs.last().copied().unwrap_or(0),
            limit: 0,
            with_candidate: false,
        };
        let page = device
            .sync()
            .pull(request)
            .await
            .expect("pulled")
            .into_inner();
        seqs.extend(page.envelopes.iter().map(|e| e.server_seq));
        if !page.more {
            return seqs;
        }
    }
}

#[tokio::test]
async fn a_backup_taken_while_pushes_run_restores_every_acknowledged_envelope() {
    let mut server = TestServer::start().await;
    let alex = server.create_space().await;
    let doc = random16();
    let acknowledged = Arc::new(Mutex::new(Vec::<u64>::new()));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let pusher = {
        let mut device = server.reconnect(&alex).await;
        let doc = doc.clone();
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            while !*stop_rx.borrow_and_update() {
                let envelope = device.change(b"sealed while backing up");
                let pushed = device
                    .sync()
                    .push(push_request(&doc, Audience::Shared, vec![envelope]))
                    .await
                    .expect("pushed");
                acknowledged
                    .lock()
                    .expect("a lock")
                    .extend(pushed.into_inner().server_seqs);
            }
        })
    };
    while acknowledged.lock().expect("a lock").len() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before_backup: Vec<u64> = acknowledged.lock().expect("a lock").clone();
    let mut chunks = server
        .admin()
        .await
        .backup(BackupRequest {})
        .await
        .expect("a backup starts")
        .into_inner();
    let backup_file = server.scratch().join("online.kbk");
    let mut file = std::fs::File::create(&backup_file).expect("a file");
    let mut total = None;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.expect("a chunk");
        total = Some(chunk.total_bytes);
        file.write_all(&chunk.data).expect("written");
    }
    drop(file);
    let _ = stop_tx.send(true);
    pusher.await.expect("the pusher ends");
    let size = std::fs::metadata(&backup_file).expect("written").len();
    assert_eq!(Some(size), total);
    assert!(
        std::fs::read_dir(server.data())
            .expect("the data folder")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(".backup-")),
        "the temporary copy is gone"
    );

    let restored_dir = server.scratch().join("restored");
    kintsugi_server::offline_admin::restore(&backup_file, &restored_dir).expect("restored");
    let mut restored = TestServer::builder().data(&restored_dir).start().await;
    let alex_there = restored.reconnect(&alex).await;
    let seqs = pull_all(&alex_there, &doc).await;
    let dense: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, dense, "the copy is consistent: no gaps");
    for seq in &before_backup {
        assert!(
            seqs.contains(seq),
            "seq {seq} was acknowledged before the backup"
        );
    }
    restored.stop().await.expect("a clean stop");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn the_admin_service_needs_the_admin_token() {
    let mut server = TestServer::start().await;
    let alex = server.create_space().await;
    let stats = server
        .admin()
        .await
        .stats(StatsRequest {})
        .await
        .expect("stats")
        .into_inner();
    assert_eq!((stats.spaces, stats.devices), (1, 1));
    let device_token =
        AdminServiceClient::with_interceptor(server.channel().await, Bearer::of(&alex.token));
    let refused = { device_token }
        .stats(StatsRequest {})
        .await
        .expect_err("a device token is no admin token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let path = kintsugi_server::offline_admin::admin_token_path(server.data());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn offline_tasks_refuse_a_running_server_a_full_folder_and_a_damaged_file() {
    let mut server = TestServer::start().await;
    let mut alex = server.create_space().await;
    let envelope = alex.change(b"kept");
    alex.sync()
        .push(push_request(&random16(), Audience::Shared, vec![envelope]))
        .await
        .expect("pushed");
    let data = server.data().to_path_buf();
    let running = kintsugi_server::offline_admin::stats(&data).expect_err("the server holds it");
    assert!(matches!(running, AdminError::ServerRunning(_)));
    assert_eq!(
        running.to_string(),
        format!(
            "a server is running on {}; ask it with --server, or stop it",
            data.display()
        )
    );
    server.stop().await.expect("a clean stop");
    let scratch = server.scratch();

    let stats = kintsugi_server::offline_admin::stats(&data).expect("offline stats");
    assert_eq!((stats.spaces, stats.documents, stats.envelopes), (1, 1, 1));
    let backup = scratch.join("offline.kbk");
    kintsugi_server::offline_admin::backup(&data, &backup).expect("offline backup");
    let full = kintsugi_server::offline_admin::restore(&backup, &data).expect_err("not empty");
    assert!(matches!(full, AdminError::NotEmpty(_)), "{full}");
    let elsewhere = scratch.join("elsewhere");
    kintsugi_server::offline_admin::restore(&backup, &elsewhere).expect("restored");
    assert_eq!(
        kintsugi_server::offline_admin::stats(&elsewhere).expect("stats"),
        stats
    );

    let mut bytes = std::fs::read(&backup).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&backup, bytes).expect("written");
    let damaged = scratch.join("from-damaged");
    let error = kintsugi_server::offline_admin::restore(&backup, &damaged).expect_err("damaged");
    assert!(error.to_string().contains("damaged"), "{error}");
    assert!(!damaged.exists(), "nothing was written");
    let stranger = kintsugi_server::offline_admin::stats(&scratch.join("nothing-here"));
    assert!(matches!(stranger, Err(AdminError::NotADataFolder(_))));
    assert!(
        !scratch.join("nothing-here").exists(),
        "stats creates no store"
    );
}
