//! Tests of the settings: file, environment, flags, and the messages of each mistake.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("kintsugi.toml");
    std::fs::write(&path, text).expect("written");
    path
}

#[test]
fn defaults_are_safe_without_any_file() {
    let mut settings = ServerSettings::load_with_env(None, no_env).expect("defaults load");
    assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(settings.config.data_dir, PathBuf::from(DEFAULT_DATA));
    assert_eq!(settings.log_format, LogFormat::Plain);
    assert!(settings.config.tls.is_none() && settings.config.metrics_listen.is_none());
    settings.validate().expect("the defaults validate");
}

#[test]
fn the_example_file_in_deploy_loads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kintsugi.toml");
    let settings = ServerSettings::load_with_env(Some(&example), no_env).expect("it loads");
    assert_eq!(settings.config.space_quota_bytes, 1 << 30);
    assert_eq!(settings.config.keepalive_interval, Duration::from_secs(30));
}

#[test]
fn a_file_sets_every_section() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = write(
        dir.path(),
        r#"
listen = "0.0.0.0:443"
data = "/var/lib/kintsugi"
log_format = "json"
[tls]
cert = "/etc/kintsugi/cert.pem"
key = "/etc/kintsugi/key.pem"
[metrics]
listen = "127.0.0.1:9100"
[limits]
space_quota_bytes = 5_000_000
device_calls_per_second = 5
pairing_calls_per_minute = 30
[timing]
snapshot_retention_days = 7
keepalive_interval_secs = 20
"#,
    );
    let mut settings = ServerSettings::load_with_env(Some(&file), no_env).expect("it loads");
    settings.validate().expect("TLS makes 0.0.0.0 fine");
    let config = &settings.config;
    assert_eq!(settings.listen.to_string(), "0.0.0.0:443");
    assert_eq!(settings.log_format, LogFormat::Json);
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/kintsugi"));
    assert_eq!(
        config.tls.as_ref().map(|t| t.key.clone()),
        Some("/etc/kintsugi/key.pem".into())
    );
    assert_eq!(config.space_quota_bytes, 5_000_000);
    assert_eq!(config.device_rate.per_second, 5.0);
    assert_eq!(config.pairing_rate.per_second, 0.5);
    assert_eq!(config.snapshot_retention, Duration::from_secs(7 * 86_400));
    assert_eq!(config.keepalive_interval, Duration::from_secs(20));
    assert_eq!(settings.file(), Some(file.as_path()));
}

#[test]
fn mistakes_in_the_file_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = write(dir.path(), "[limits]\nmax_envelope_bytes = 10\n");
    let error = ServerSettings::load_with_env(Some(&file), no_env).expect_err("too small");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: limits.max_envelope_bytes must be at least 1024",
            file.display()
        )
    );
    let file = write(dir.path(), "[limits]\nmax_envelope = 2048\n");
    let error = ServerSettings::load_with_env(Some(&file), no_env).expect_err("unknown key");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "{} line 2: unknown field `max_envelope`",
            file.display()
        )),
        "{text}"
    );
    let file = write(dir.path(), "listen = \"localhost\"\n");
    let text = ServerSettings::load_with_env(Some(&file), no_env)
        .expect_err("no port")
        .to_string();
    assert!(
        text.contains("listen `localhost` is not an address with a port"),
        "{text}"
    );
    let missing = dir.path().join("missing.toml");
    let text = ServerSettings::load_with_env(Some(&missing), no_env)
        .expect_err("missing")
        .to_string();
    assert!(text.starts_with("cannot read configuration file"), "{text}");
}

#[test]
fn the_environment_overrides_the_file_and_flags_override_both() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = write(
        dir.path(),
        "data = \"/from/file\"\nlisten = \"127.0.0.1:1000\"\n",
    );
    let env: HashMap<&str, &str> = [
        ("KINTSUGI_DATA", "/from/env"),
        ("KINTSUGI_METRICS_LISTEN", "127.0.0.1:9100"),
        ("KINTSUGI_SPACE_QUOTA_BYTES", "1000000"),
        ("KINTSUGI_LOG_FORMAT", "json"),
    ]
    .into_iter()
    .collect();
    let lookup = |name: &str| env.get(name).map(|v| v.to_string());
    let mut settings = ServerSettings::load_with_env(Some(&file), lookup).expect("loads");
    assert_eq!(settings.config.data_dir, PathBuf::from("/from/env"));
    assert_eq!(
        settings.listen.port(),
        1000,
        "the file's value stays where no variable is set"
    );
    assert_eq!(settings.config.space_quota_bytes, 1_000_000);
    settings.config.data_dir = "/from/flag".into();
    settings.validate().expect("valid");
    assert_eq!(settings.config.data_dir, PathBuf::from("/from/flag"));

    let bad = |name: &str| (name == "KINTSUGI_MAX_ENVELOPE_BYTES").then(|| "12".to_owned());
    let text = ServerSettings::load_with_env(None, bad)
        .expect_err("too small")
        .to_string();
    assert_eq!(
        text,
        "KINTSUGI_MAX_ENVELOPE_BYTES: limits.max_envelope_bytes must be at least 1024"
    );
    let named = |name: &str| (name == "KINTSUGI_CONFIG").then(|| file.display().to_string());
    let settings = ServerSettings::load_with_env(None, named).expect("KINTSUGI_CONFIG is read");
    assert_eq!(settings.config.data_dir, PathBuf::from("/from/file"));
}

#[test]
fn plaintext_and_metrics_off_loopback_need_tls_or_consent() {
    let mut settings = ServerSettings::defaults();
    settings.listen = "0.0.0.0:7878".parse().expect("an address");
    let text = settings.validate().expect_err("plaintext").to_string();
    assert!(
        text.starts_with("settings: listen is 0.0.0.0:7878, not a loopback address"),
        "{text}"
    );
    settings.tls_cert = Some("cert.pem".into());
    let text = settings.validate().expect_err("half TLS").to_string();
    assert!(text.contains("tls.key is missing"), "{text}");
    settings.tls_key = Some("key.pem".into());
    settings.validate().expect("TLS on");
    settings.config.metrics_listen = Some("0.0.0.0:9100".parse().expect("an address"));
    let text = settings.validate().expect_err("metrics").to_string();
    assert!(text.contains("metrics.public = true"), "{text}");
    settings.config.metrics_public = true;
    settings.validate().expect("the operator asked for it");
}

#[test]
fn a_retention_below_one_day_is_refused_naming_its_source() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = write(dir.path(), "[timing]\nsnapshot_retention_days = 0\n");
    let text = ServerSettings::load_with_env(Some(&file), no_env)
        .expect_err("no audit window")
        .to_string();
    assert!(
        text.starts_with(&format!(
            "{}: timing.snapshot_retention_days must be at least 1: ",
            file.display()
        )),
        "{text}"
    );
    let zero = |name: &str| (name == "KINTSUGI_SNAPSHOT_RETENTION_DAYS").then(|| "0".to_owned());
    let text = ServerSettings::load_with_env(None, zero)
        .expect_err("no audit window")
        .to_string();
    assert!(
        text.starts_with(
            "KINTSUGI_SNAPSHOT_RETENTION_DAYS: timing.snapshot_retention_days must be at least 1: "
        ),
        "{text}"
    );
    let file = write(dir.path(), "[timing]\nsnapshot_retention_days = 1\n");
    let mut settings = ServerSettings::load_with_env(Some(&file), no_env).expect("a day is enough");
    settings.validate().expect("valid");
    assert_eq!(
        settings.config.snapshot_retention,
        Duration::from_secs(86_400)
    );
    settings.config.snapshot_retention = Duration::from_secs(3600);
    let text = settings
        .validate()
        .expect_err("an hour is too short")
        .to_string();
    assert!(
        text.starts_with("settings: timing.snapshot_retention_days must be at least 1"),
        "{text}"
    );
}
