//! Partners sync through a server speaking TLS with a certificate from their own CA (as on a
//! home server); a device that trusts another CA is refused with a clear error.

use kintsugi_core::{CodeKind, CoreError, Device, Enrolment, system_clock};
use kintsugi_server::testing::TestServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA, and a server certificate it signed for localhost: (ca_pem, cert_pem, key_pem).
fn certificates(name: &str) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("parameters")
        .signed_by(&leaf_key, &ca)
        .expect("certificate");
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn enrolment<'a>(dir: &'a std::path::Path, url: &'a str, name: &'a str, ca: &str) -> Enrolment<'a> {
    Enrolment {
        dir,
        server_url: url,
        member_name: name,
        device_name: "phone",
        ca_cert_pem: Some(ca.to_string()),
        clock: system_clock(),
    }
}

#[tokio::test]
async fn partners_sync_over_tls_and_a_device_trusting_another_ca_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates("Home CA");
    let (other_ca, _, _) = certificates("Other CA");
    let mut server = TestServer::builder()
        .data(root.path().join("server"))
        .tls(&cert, &key, &ca)
        .start()
        .await;
    let url = format!("https://localhost:{}", server.addr().port());

    let (a, b, e) = (
        root.path().join("alice"),
        root.path().join("bob"),
        root.path().join("eve"),
    );
    let alice = Device::init(enrolment(&a, &url, "Alice", &ca))
        .await
        .expect("init over TLS");
    let code = alice
        .invite(CodeKind::Partner)
        .await
        .expect("invite")
        .encode();
    let bob = Device::join(enrolment(&b, &url, "Bob", &ca), &code)
        .await
        .expect("join over TLS");
    alice
        .add_boundary("Tell each other when an ex gets in touch", "contact")
        .expect("add");
    alice.sync().await.expect("sync over TLS");
    bob.sync().await.expect("sync over TLS");
    assert_eq!(bob.boundaries().expect("list").len(), 1);

    let err = Device::init(enrolment(&e, &url, "Eve", &other_ca))
        .await
        .expect_err("wrong CA");
    assert!(matches!(err, CoreError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains("--ca-cert"), "{err}");

    server.stop().await.expect("server stopped");
}
