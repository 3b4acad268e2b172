//! TLS: the server's identity from PEM files, served by rustls through tonic (`tls-ring`).
//!
//! Plain gRPC is allowed on loopback only, where nobody else can listen; with TLS the server
//! may listen anywhere. The files are read once at start. A missing, unreadable or non-PEM
//! file, and a key that does not belong to the certificate, stop the start with a message
//! that names the file and says what to do, because the alternative, a server that starts and
//! then fails every handshake, is much harder to diagnose. tonic's errors say only "transport
//! error" at the top; `error_chain` walks their sources for the reason.

use std::error::Error as StdError;
use std::path::Path;

use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::error::ServerError;
use crate::settings::TlsFiles;

/// Reads the identity and sets it on `server`.
pub(crate) fn configure(server: Server, files: &TlsFiles) -> Result<Server, ServerError> {
    let cert = read(&files.cert, "certificate")?;
    if !contains(&cert, b"-----BEGIN CERTIFICATE-----") {
        return Err(ServerError::Tls {
            what: "certificate",
            file: files.cert.clone(),
            problem: "holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the \
                      certificate chain in PEM, the server's certificate first"
                .into(),
        });
    }
    let key = read(&files.key, "key")?;
    if !contains(&key, b"PRIVATE KEY-----") {
        return Err(ServerError::Tls {
            what: "key",
            file: files.key.clone(),
            problem: "holds no PEM private key (-----BEGIN PRIVATE KEY-----); give the \
                      certificate's private key in PEM"
                .into(),
        });
    }
    let identity = Identity::from_pem(cert, key);
    server
        .tls_config(ServerTlsConfig::new().identity(identity))
        .map_err(|error| {
            let reason = error_chain(&error);
            let about_key = reason.to_ascii_lowercase().contains("key");
            ServerError::Tls {
                what: if about_key { "key" } else { "certificate" },
                file: if about_key {
                    files.key.clone()
                } else {
                    files.cert.clone()
                },
                problem: format!(
                    "cannot be used ({reason}); check that the key belongs to the certificate \
                     and both are PEM"
                ),
            }
        })
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|error| ServerError::Tls {
        what,
        file: path.to_path_buf(),
        problem: format!(
            "cannot be read ({error}); check the path and that the server may read it"
        ),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// An error and its sources as one line, skipping repeats: tonic's "transport error" hides
/// its reason (such as `invalid peer certificate: UnknownIssuer`) in the source chain.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(next) = source {
        let text = next.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = next.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_and_non_pem_files_are_named() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let missing = TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("key.pem"),
        };
        let error = configure(Server::builder(), &missing).expect_err("missing");
        let text = error.to_string();
        assert!(text.starts_with("TLS certificate "), "{text}");
        assert!(text.contains("nope.pem: cannot be read"), "{text}");
        std::fs::write(&missing.cert, "hello").expect("written");
        let text = configure(Server::builder(), &missing)
            .expect_err("not pem")
            .to_string();
        assert!(text.contains("holds no PEM certificate"), "{text}");
    }
}
