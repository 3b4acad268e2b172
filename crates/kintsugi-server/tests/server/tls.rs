//! TLS: clients that trust the server's CA sync; others fail with a reason that names the
//! certificate; unusable files stop the start with the file named.

use kintsugi_proto::v1::{Audience, InviteKind, PullRequest};
use kintsugi_server::testing::TestServer;
use kintsugi_server::{ServerError, TlsFiles};

use crate::support::{Clients, push_request, random16, test_certificates};

#[tokio::test]
async fn a_client_trusting_the_ca_pushes_and_pulls_over_tls() {
    let (ca, cert, key) = test_certificates();
    let mut server = TestServer::builder().tls(&cert, &key, &ca).start().await;
    assert!(server.url().starts_with("https://"));
    let mut alex = server.create_space().await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    let doc = random16();
    let envelope = alex.change(b"sealed over tls");
    alex.sync()
        .push(push_request(&doc, Audience::Shared, vec![envelope]))
        .await
        .expect("pushed");
    let pulled = sam
        .sync()
        .pull(PullRequest {
            doc_id: doc,
            after_seq: 0,
            limit: 0,
            with_candidate: false,
        })
        .await
        .expect("pulled")
        .into_inner();
    assert_eq!(pulled.envelopes[0].ciphertext, b"sealed over tls");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused_with_the_reason() {
    let (ca, cert, key) = test_certificates();
    let (other_ca, _, _) = test_certificates();
    let mut server = TestServer::builder().tls(&cert, &key, &ca).start().await;
    // Make sure the server is up before the failing attempt.
    server.create_space().await;
    let error = server
        .try_channel_trusting(Some(&other_ca))
        .await
        .expect_err("untrusted");
    assert_eq!(
        error.to_string(),
        "transport error",
        "tonic hides the reason"
    );
    let reason = kintsugi_server::error_chain(&error);
    assert!(reason.contains("certificate"), "{reason}");
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn with_tls_any_address_may_be_served() {
    let (_, cert, key) = test_certificates();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, cert).expect("written");
    std::fs::write(&files.key, key).expect("written");
    TestServer::builder()
        .data(dir.path().join("data"))
        .config(|config| config.tls = Some(files))
        .listen("0.0.0.0:0".parse().expect("an address"))
        .start_and_stop()
        .await
        .expect("served on 0.0.0.0 and stopped cleanly");
}

#[tokio::test]
async fn unusable_tls_files_stop_the_start_and_name_the_file() {
    let (_, cert, _) = test_certificates();
    let (_, _, other_key) = test_certificates();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, cert).expect("written");
    std::fs::write(&files.key, other_key).expect("written");
    let start = || {
        TestServer::builder()
            .data(dir.path().join("data"))
            .config(|config| config.tls = Some(files.clone()))
            .start_and_stop()
    };
    let error = start().await.expect_err("mismatched key");
    assert!(matches!(error, ServerError::Tls { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("key.pem"), "{text}");
    assert!(
        text.contains("check that the key belongs to the certificate"),
        "{text}"
    );

    std::fs::write(&files.key, "not a key").expect("written");
    let text = start().await.expect_err("no key").to_string();
    assert!(
        text.starts_with("TLS key ") && text.contains("holds no PEM private key"),
        "{text}"
    );
    std::fs::remove_file(&files.cert).expect("removed");
    let text = start().await.expect_err("no cert").to_string();
    assert!(text.contains("cert.pem: cannot be read"), "{text}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing was created before TLS was checked"
    );
}
