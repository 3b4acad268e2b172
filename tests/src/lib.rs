//! Shared helpers for the end-to-end tests: a real server on 127.0.0.1 and client cores in
//! temporary folders, started the same way the binary and the demo start them.

pub mod fuzz;
pub mod hostile;
pub mod proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use kintsugi_core::Clock as DeviceClock;
use kintsugi_core::UnixMillis;
use kintsugi_core::{CodeKind, Device, Enrolment, system_clock};
use kintsugi_server::{Clock, Config, SystemClock};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server over a data folder that outlives restarts.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub data: PathBuf,
    clock: Arc<dyn Clock>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), kintsugi_server::ServerError>>>,
}

impl TestServer {
    /// Starts a server on a free loopback port over `data`.
    pub async fn start(data: &Path) -> TestServer {
        Self::start_with_clock(data, Arc::new(SystemClock)).await
    }

    /// Starts a server whose time is `clock`, e.g. a `ManualClock` a test moves forward.
    pub async fn start_with_clock(data: &Path, clock: Arc<dyn Clock>) -> TestServer {
        Self::start_at("127.0.0.1:0".parse().expect("address"), data, clock).await
    }

    async fn start_at(addr: SocketAddr, data: &Path, clock: Arc<dyn Clock>) -> TestServer {
        let listener = TcpListener::bind(addr).await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let run =
            kintsugi_server::run_with_clock(listener, Config::new(data), clock.clone(), shutdown);
        let task = tokio::spawn(run);
        TestServer {
            addr,
            data: data.to_path_buf(),
            clock,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server gracefully; clients see it as unreachable until `start_again`.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// Starts a server on the same address over another data folder (e.g. a restored backup).
    pub async fn restart_on(&mut self, data: &Path) {
        self.stop().await;
        *self = Self::start_at(self.addr, data, self.clock.clone()).await;
    }

    /// Starts the server again on the same address and data.
    pub async fn start_again(&mut self) {
        self.stop().await;
        *self = Self::start_at(self.addr, &self.data.clone(), self.clock.clone()).await;
    }
}

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
        let root = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start_with_clock(&root.path().join("server"), clock).await;
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

/// Every file under `dir`, with its bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).expect("read dir") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                stack.push(entry.path());
            } else {
                out.push((
                    entry.path(),
                    std::fs::read(entry.path()).expect("read file"),
                ));
            }
        }
    }
    out
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
