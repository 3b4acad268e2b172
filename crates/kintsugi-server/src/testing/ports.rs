//! Ports and readiness for a server in another process: a free loopback port to start it on,
//! and waiting until it accepts connections (after a start, or a restart after SIGKILL).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

/// How often the waits below try again.
const RETRY: Duration = Duration::from_millis(25);

/// A loopback port that was free a moment ago: bound on 127.0.0.1 port 0, then released.
///
/// # Panics
///
/// If no loopback port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Waits, blocking the thread, until something accepts TCP connections at `address`; false if
/// nothing did within `within`.
pub fn wait_until_listening(address: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(address).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(RETRY);
    }
}

/// A gRPC channel to `url` as soon as the server there accepts one.
///
/// # Panics
///
/// If `url` is not a valid URL, or no server accepted a connection within `within`.
pub async fn connect_when_up(url: &str, within: Duration) -> Channel {
    let endpoint = Channel::from_shared(url.to_owned()).expect("a valid URL");
    let deadline = Instant::now() + within;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(error) if Instant::now() >= deadline => {
                panic!("no server came up at {url} within {within:?}: {error}")
            }
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}
