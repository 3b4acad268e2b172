//! Observability: Prometheus metrics move with the traffic, gRPC health reports every service
//! SERVING, reflection lists them, and a TLS server with metrics still stops cleanly.

use kintsugi_proto::v1::subscribe_event::Event;
use kintsugi_proto::v1::{Audience, InviteKind, SubscribeRequest};
use kintsugi_server::ServerError;
use kintsugi_server::store::{AdminStore, SledStore};
use kintsugi_server::testing::TestServer;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{Clients, push_request, random16, test_certificates};

/// The value of the sample line that starts with `name ` in the metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test]
async fn metrics_move_after_a_push_and_its_delivery() {
    let mut server = TestServer::start().await;
    let before = server.scrape().await;
    assert_eq!(
        sample(&before, "kintsugi_pushes_total"),
        Some(0.0),
        "{before}"
    );
    let mut alex = server.create_space().await;
    let sam = server.invite(&alex, InviteKind::Partner).await;
    let mut stream = sam
        .sync()
        .subscribe(SubscribeRequest { cursors: vec![] })
        .await
        .expect("subscribed")
        .into_inner();
    let envelope = alex.change(&[9; 100]);
    alex.sync()
        .push(push_request(&random16(), Audience::Shared, vec![envelope]))
        .await
        .expect("pushed");
    loop {
        let event = stream.next().await.expect("open").expect("no error");
        if matches!(event.event, Some(Event::Envelopes(_))) {
            break;
        }
    }
    // A call is counted when its handler's future completes, which can be just after the
    // client has the answer: wait for the count rather than race it.
    let push_ok = "kintsugi_calls_total{method=\"kintsugi.sync.v1.SyncService/Push\",code=\"OK\"}";
    let counted = |text: &str| {
        sample(text, "kintsugi_pushes_total") == Some(1.0) && sample(text, push_ok) == Some(1.0)
    };
    let mut after = server.scrape().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !counted(&after) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        after = server.scrape().await;
    }
    assert_eq!(
        sample(&after, "kintsugi_pushes_total"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(sample(&after, "kintsugi_pushed_envelopes_total"), Some(1.0));
    assert_eq!(sample(&after, "kintsugi_pushed_bytes_total"), Some(124.0));
    assert_eq!(sample(&after, "kintsugi_live_subscribers"), Some(1.0));
    assert_eq!(
        sample(&after, "kintsugi_push_to_delivery_seconds_count"),
        Some(1.0)
    );
    assert_eq!(sample(&after, push_ok), Some(1.0), "{after}");
    drop(stream);
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn health_says_serving_and_reflection_lists_the_services() {
    let mut server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "",
        "kintsugi.sync.v1.PairingService",
        "kintsugi.sync.v1.SpaceService",
        "kintsugi.sync.v1.SyncService",
        "kintsugi.admin.v1.AdminService",
    ] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("checked")
            .into_inner();
        assert_eq!(reply.status, ServingStatus::Serving as i32, "{service}");
    }
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection answers")
        .into_inner();
    let reply = replies.next().await.expect("a reply").expect("no error");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "kintsugi.sync.v1.SyncService",
        "kintsugi.admin.v1.AdminService",
    ] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    drop(replies);
    server.stop().await.expect("a clean stop");
}

#[tokio::test]
async fn metrics_off_loopback_need_the_operators_consent() {
    let result = TestServer::builder()
        .config(|config| config.metrics_listen = Some("0.0.0.0:0".parse().expect("an address")))
        .start_and_stop()
        .await;
    assert!(
        matches!(result, Err(ServerError::MetricsNotLoopback(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn shutdown_with_tls_and_metrics_ends_streams_and_flushes() {
    let (ca, cert, key) = test_certificates();
    let mut server = TestServer::builder().tls(&cert, &key, &ca).start().await;
    let mut alex = server.create_space().await;
    let envelope = alex.change(b"kept over tls");
    alex.sync()
        .push(push_request(&random16(), Audience::Shared, vec![envelope]))
        .await
        .expect("pushed");
    let mut stream = alex
        .sync()
        .subscribe(SubscribeRequest { cursors: vec![] })
        .await
        .expect("subscribed")
        .into_inner();
    stream.next().await.expect("catch-up").expect("no error");
    assert!(
        server
            .scrape()
            .await
            .contains("kintsugi_live_subscribers 1")
    );
    let metrics = server.metrics_addr().expect("a metrics listener");
    server
        .stop()
        .await
        .expect("run returns once the stream ended");
    while let Some(event) = stream.next().await {
        if let Err(status) = event {
            assert_eq!(status.code(), tonic::Code::Unavailable);
        }
    }
    assert!(
        tokio::net::TcpStream::connect(metrics).await.is_err(),
        "the metrics listener is closed"
    );
    let store = SledStore::open(server.data()).expect("released and flushed");
    assert_eq!(store.stats().expect("stats").envelopes, 1);
}
