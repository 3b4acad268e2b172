//! Shared helpers for the end-to-end tests: a world of client cores in temporary folders around
//! a real server on 127.0.0.1 (`kintsugi_server::testing::TestServer`).

pub mod fuzz;
pub mod hostile;
pub mod proxy;
pub mod server_data;
pub mod trace;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use kintsugi_core::Clock as DeviceClock;
use kintsugi_core::UnixMillis;
use kintsugi_core::{CodeKind, Device, Enrolment, system_clock};
use kintsugi_server::testing::{TestServer, TestServerBuilder};
use kintsugi_server::{Clock, SystemClock};
use tempfile::TempDir;

/// A temporary world: one folder for the server and one per phone.
#[derive(Debug)]
pub struct World {
    pub root: TempDir,
    pub server: TestServer,
}

impl World {
    pub async fn new() -> World {
        Self::with_clock(Arc::new(SystemClock)).await
    }

    /// A world whose server tells time by `clock`.
    pub async fn with_clock(clock: Arc<dyn Clock>) -> World {
        Self::around(|server| server.clock(clock)).await
    }

    /// A world whose server allows each device a million calls a second, for benchmarks
    /// that sync in a loop.
    pub async fn unthrottled() -> World {
        Self::around(|server| {
            server.config(|config| {
                config.device_rate.per_second = 1e6;
                config.device_rate.burst = 1_000_000;
            })
        })
        .await
    }

    /// A world around a server built as `adjust` says, its data in the world's folder.
    async fn around(adjust: impl FnOnce(TestServerBuilder) -> TestServerBuilder) -> World {
        let root = tempfile::tempdir().expect("tempdir");
        let builder = TestServer::builder().data(root.path().join("server"));
        let server = adjust(builder).start().await;
        World { root, server }
    }

    pub fn home(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn enrolment<'a>(
        &self,
        home: &'a Path,
        url: &'a str,
        name: &'a str,
        clock: DeviceClock,
    ) -> Enrolment<'a> {
        Enrolment {
            dir: home,
            server_url: url,
            member_name: name,
            device_name: "phone",
            ca_cert_pem: None,
            clock,
        }
    }

    /// A new space whose first partner is `name`.
    pub async fn init(&self, name: &str) -> Device {
        self.init_with_clock(name, system_clock()).await
    }

    /// A new space whose first partner is `name`, on a device that tells time by `clock`.
    pub async fn init_with_clock(&self, name: &str, clock: DeviceClock) -> Device {
        let (home, url) = (self.home(name), self.server.url());
        Device::init(self.enrolment(&home, &url, name, clock))
            .await
            .expect("init")
    }

    /// `inviter` invites a partner (or links a device) and `home` joins with the code.
    pub async fn join(&self, inviter: &Device, kind: CodeKind, home: &str, name: &str) -> Device {
        self.join_with_clock(inviter, kind, home, name, system_clock())
            .await
    }

    /// As `join`, on a device that tells time by `clock`.
    pub async fn join_with_clock(
        &self,
        inviter: &Device,
        kind: CodeKind,
        home: &str,
        name: &str,
        clock: DeviceClock,
    ) -> Device {
        let code = inviter.invite(kind).await.expect("invite").encode();
        let (dir, url) = (self.home(home), self.server.url());
        Device::join(self.enrolment(&dir, &url, name, clock), &code)
            .await
            .expect("join")
    }

    /// As `join`, and the code it joined with (as someone who later reads it would have it).
    pub async fn join_keeping_code(
        &self,
        inviter: &Device,
        kind: CodeKind,
        home: &str,
        name: &str,
    ) -> (Device, String) {
        let code = inviter.invite(kind).await.expect("invite").encode();
        let (dir, url) = (self.home(home), self.server.url());
        let device = Device::join(self.enrolment(&dir, &url, name, system_clock()), &code)
            .await
            .expect("join");
        (device, code)
    }

    /// Alice and Bob, paired.
    pub async fn couple(&self) -> (Device, Device) {
        let alice = self.init("Alice").await;
        let bob = self.join(&alice, CodeKind::Partner, "Bob", "Bob").await;
        (alice, bob)
    }
}

/// Syncs every device twice, in order, so each holds what all the others pushed.
pub async fn sync_all(devices: &[&Device]) {
    for _ in 0..2 {
        for device in devices {
            device.sync().await.expect("sync");
        }
    }
}

/// A device clock a test sets by hand: milliseconds since the Unix epoch.
#[derive(Clone, Debug, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    /// A clock showing `rfc3339`, e.g. `2026-01-08T10:00:00Z`.
    pub fn at(rfc3339: &str) -> TestClock {
        let clock = TestClock::default();
        clock.set(rfc3339);
        clock
    }

    /// Moves the clock to `rfc3339`.
    pub fn set(&self, rfc3339: &str) {
        self.0.store(millis(rfc3339).as_millis(), Ordering::SeqCst);
    }

    /// The clock as a device takes it.
    pub fn clock(&self) -> DeviceClock {
        let now = self.0.clone();
        Arc::new(move || UnixMillis::from_millis(now.load(Ordering::SeqCst)))
    }
}

/// The Unix time of an RFC 3339 time, as a device counts it.
pub fn millis(rfc3339: &str) -> UnixMillis {
    let time = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time");
    UnixMillis::from_millis((time.unix_timestamp_nanos() / 1_000_000) as i64)
}
