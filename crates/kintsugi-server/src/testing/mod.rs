//! The one way tests start a Kintsugi server, and the one way they search files for bytes.
//!
//! Behind the `testing` feature (and always in this crate's own unit tests), so the server's
//! integration tests, the CLI's tests and the end-to-end `tests` crate share it without a
//! dependency cycle:
//!
//! - `TestServer` runs the real server (`run_with_listeners`) in this process on 127.0.0.1
//!   port 0 over a real sled folder in a scratch directory. `TestServer::builder()` changes the
//!   `Config`, the clock, the data folder, the address or adds TLS; `stop`, `start_again` and
//!   `restart_on` stop it and bring it back on the same address. In this crate's unit tests the
//!   same builder also hands the services' state to handler tests without a network
//!   (`handlers`), optionally over a store whose durability the test holds back (`gated`).
//! - `free_port`, `wait_until_listening` and `connect_when_up` serve tests that start the
//!   `kintsugi` binary in another process (to kill it with SIGKILL, say).
//! - `files_under`, `files_containing` and `contains_bytes` back every check that a secret or a
//!   plaintext never lands on disk.

mod files;
mod ports;
mod server;

#[cfg(test)]
mod gated;
#[cfg(test)]
pub(crate) mod handlers;

pub use files::{contains_bytes, files_containing, files_under};
pub use ports::{connect_when_up, free_port, wait_until_listening};
pub use server::{TestServer, TestServerBuilder};
