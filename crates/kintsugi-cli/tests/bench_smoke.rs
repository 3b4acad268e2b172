//! A seconds-long smoke of `kintsugi bench`: each scenario runs against its own server and
//! reports what it measured. Behaviour only (every edit arrived, every ack durable, the
//! fields are there); the figures themselves are for docs/performance.md, never asserted.

use std::process::Command;

fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kintsugi"))
        .args(["bench", "--json", "--duration", "1"])
        .args(args)
        .output()
        .expect("run kintsugi bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn number(report: &serde_json::Value, field: &str) -> f64 {
    report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is a number in {report}"))
}

#[test]
fn couples_edit_live_and_every_edit_reaches_the_partner() {
    let report = bench(&[
        "--scenario",
        "couples",
        "--devices",
        "4",
        "--edits",
        "10",
        "--idle-devices",
        "5",
    ]);
    assert_eq!(report["system"], "kintsugi");
    assert_eq!(number(&report, "changes"), 40.0);
    assert_eq!(number(&report, "unseen_changes"), 0.0);
    assert_eq!(report["durable_acks"], true);
    assert_eq!(number(&report, "idle_devices"), 5.0);
    for field in [
        "pushes_per_sec",
        "server_cpu_ms_per_change",
        "client_cpu_ms_per_change",
        "wire_bytes_per_change",
        "server_peak_rss_kib",
    ] {
        assert!(
            number(&report, field) > 0.0,
            "{field} was measured: {report}"
        );
    }
    let latency = &report["latency_ms"];
    assert!(latency["p50"].as_f64() <= latency["p99"].as_f64());
    assert!(latency["p99"].as_f64() <= latency["max"].as_f64());
    assert!(
        report["rate_limits"].is_object(),
        "the limits in force: {report}"
    );
}

#[test]
fn raw_devices_push_and_each_push_is_acknowledged() {
    let report = bench(&["--scenario", "raw", "--devices", "8", "--idle-devices", "0"]);
    assert_eq!(report["scenario"], "raw");
    assert!(number(&report, "changes") > 0.0, "{report}");
    assert!(number(&report, "pushes_per_sec") > 0.0, "{report}");
    assert!(number(&report, "wire_bytes_per_change") > 0.0, "{report}");
}
