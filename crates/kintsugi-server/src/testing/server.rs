//! `TestServer`: the real server in this process on a loopback port over a scratch sled
//! folder, started by `TestServer::start()` or `TestServer::builder()…start()`.
//!
//! It runs `run_with_listeners`, where the binary's `serve_settings` also ends up, with a
//! metrics listener of its own on another loopback port (unless the config names one). The
//! data folder and any TLS files live in a scratch folder that lives as long as the value, so
//! a test can look at the files after `stop`. Dropping a running server asks it to stop;
//! `stop().await` also waits for it and returns what `run` returned.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::{Clock, Config, ServerError, SystemClock, TlsFiles};

/// How a `TestServer` will start: its config, clock, data folder, address and TLS identity.
#[derive(Debug)]
pub struct TestServerBuilder {
    pub(super) scratch: TempDir,
    pub(super) config: Config,
    pub(super) clock: Option<Arc<dyn Clock>>,
    listen: SocketAddr,
    ca_pem: Option<String>,
}

impl TestServerBuilder {
    /// Changes the `Config` (limits, retention, rates…); its data folder is set by `data`.
    pub fn config(mut self, adjust: impl FnOnce(&mut Config)) -> Self {
        adjust(&mut self.config);
        self
    }

    /// Serves `data` instead of a fresh folder in the scratch folder (a restored backup, or a
    /// folder the test keeps across servers).
    pub fn data(mut self, data: impl Into<PathBuf>) -> Self {
        self.config.data_dir = data.into();
        self
    }

    /// Tells time by `clock`, e.g. a `ManualClock` the test moves forward.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Listens on `address` instead of 127.0.0.1 port 0 (plaintext needs a loopback one).
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = address;
        self
    }

    /// Serves TLS with this certificate and key (PEM, written to the scratch folder); the
    /// server's own clients (`channel`) trust `ca_pem` and expect the name `localhost`.
    pub fn tls(mut self, cert_pem: &str, key_pem: &str, ca_pem: &str) -> Self {
        let files = TlsFiles {
            cert: self.scratch.path().join("cert.pem"),
            key: self.scratch.path().join("key.pem"),
        };
        std::fs::write(&files.cert, cert_pem).expect("the certificate is written");
        std::fs::write(&files.key, key_pem).expect("the key is written");
        self.config.tls = Some(files);
        self.ca_pem = Some(ca_pem.to_owned());
        self
    }

    /// Starts the server; it serves until `stop`, or until it is dropped.
    ///
    /// # Panics
    ///
    /// If the address cannot be bound.
    pub async fn start(self) -> TestServer {
        let mut server = TestServer {
            scratch: self.scratch,
            config: self.config,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            addr: self.listen,
            metrics: None,
            ca_pem: self.ca_pem,
            running: None,
        };
        server.launch().await;
        server
    }

    /// Starts the server and asks it to stop at once: returns what `run` returned, a refusal
    /// to start (plaintext off loopback, bad TLS files, a folder in use…) or `Ok` after a
    /// clean start and stop.
    pub async fn start_and_stop(self) -> Result<(), ServerError> {
        let mut server = self.start().await;
        server.stop().await
    }
}

/// The server as it runs: how to ask it to stop, and what it returns.
#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServerError>>,
}

/// A server running in this process; see the module documentation.
#[derive(Debug)]
pub struct TestServer {
    scratch: TempDir,
    config: Config,
    clock: Arc<dyn Clock>,
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
    ca_pem: Option<String>,
    running: Option<Running>,
}

impl TestServer {
    /// How a server will start; `start` it when it is set up.
    ///
    /// # Panics
    ///
    /// If no scratch folder can be made.
    pub fn builder() -> TestServerBuilder {
        let scratch = tempfile::tempdir().expect("a scratch folder");
        let config = Config::new(scratch.path().join("data"));
        TestServerBuilder {
            scratch,
            config,
            clock: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ca_pem: None,
        }
    }

    /// A server with the default config and the system clock, over a fresh folder.
    pub async fn start() -> TestServer {
        Self::builder().start().await
    }

    /// Binds the address (the same one again after a stop) and starts `run` on it.
    async fn launch(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("the server's address can be bound");
        self.addr = listener.local_addr().expect("a bound address");
        let metrics = match self.config.metrics_listen {
            Some(_) => None,
            None => Some(
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a port for metrics"),
            ),
        };
        self.metrics = metrics.as_ref().and_then(|m| m.local_addr().ok());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::run_with_listeners(
            listener,
            metrics,
            self.config.clone(),
            self.clock.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        self.running = Some(Running { stop, task });
    }

    /// Asks the server to stop, waits until it has, and returns what `run` returned. A
    /// stopped server stays stopped (and its files stay) until `start_again` or a drop.
    ///
    /// # Panics
    ///
    /// If the server's task panicked.
    pub async fn stop(&mut self) -> Result<(), ServerError> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        let _ = running.stop.send(());
        running.task.await.expect("the server task does not panic")
    }

    /// Stops the server if it runs, then starts it again on the same address, folder, config
    /// and clock: a restart, as after a deploy or a power cut that sled survived.
    ///
    /// # Panics
    ///
    /// If the server did not stop cleanly, or the address cannot be bound again.
    pub async fn start_again(&mut self) {
        self.stop().await.expect("the server stopped cleanly");
        self.launch().await;
    }

    /// As `start_again`, over another data folder (a restored backup, say).
    pub async fn restart_on(&mut self, data: &Path) {
        self.stop().await.expect("the server stopped cleanly");
        self.config.data_dir = data.to_path_buf();
        self.launch().await;
    }

    /// `http://` or `https://`, then the address: what a client connects to.
    pub fn url(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's data folder.
    pub fn data(&self) -> &Path {
        &self.config.data_dir
    }

    /// A scratch folder that lives as long as the server, for backups and other files.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// The address of the server's own metrics listener; `None` when the config named one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The admin token the server keeps in its data folder.
    ///
    /// # Panics
    ///
    /// If the server has not written it (it does so before it serves).
    pub fn admin_token(&self) -> String {
        crate::admin_token::read_admin_token(self.data()).expect("the server wrote its admin token")
    }

    /// A connection to the server, trusting the CA given to `tls` if it serves TLS.
    pub async fn try_channel(&self) -> Result<Channel, tonic::transport::Error> {
        self.try_channel_trusting(self.ca_pem.as_deref()).await
    }

    /// A connection that trusts `ca_pem` (with TLS) instead of the server's own CA.
    pub async fn try_channel_trusting(
        &self,
        ca_pem: Option<&str>,
    ) -> Result<Channel, tonic::transport::Error> {
        let mut endpoint = Channel::from_shared(self.url()).expect("a valid URL");
        if let Some(ca) = ca_pem {
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost");
            endpoint = endpoint.tls_config(tls)?;
        }
        endpoint.connect().await
    }

    /// A connection to the server.
    ///
    /// # Panics
    ///
    /// If the server does not accept it.
    pub async fn channel(&self) -> Channel {
        self.try_channel()
            .await
            .expect("the server accepts connections")
    }

    /// The text of `GET /metrics` from the server's own metrics listener.
    ///
    /// # Panics
    ///
    /// Without such a listener, or unless the answer is `200 OK`.
    pub async fn scrape(&self) -> String {
        let address = self
            .metrics
            .expect("the server has its own metrics listener");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("the metrics listener accepts");
        let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.expect("sent");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("a response");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
        }
    }
}
