//! `ServerSettings`: everything `kintsugi serve` needs, from one TOML file, the environment
//! and flags, in that order of precedence (flags win).
//!
//! ```no_run
//! # fn example() -> Result<(), kintsugi_server::ConfigError> {
//! use kintsugi_server::ServerSettings;
//! let mut settings = ServerSettings::load(Some("/etc/kintsugi/kintsugi.toml".as_ref()))?;
//! // Flags overwrite the public fields...
//! settings.listen = "127.0.0.1:7979".parse().expect("an address");
//! settings.tls_cert = Some("/etc/kintsugi/cert.pem".into());
//! settings.tls_key = Some("/etc/kintsugi/key.pem".into());
//! // ...then one check of the whole.
//! settings.validate()?;
//! # Ok(())
//! # }
//! ```
//!
//! `load` reads the file (`deny_unknown_fields`: a misspelt key is an error, not a silent
//! default), then the `KINTSUGI_*` variables listed in `env::VARIABLES`, and checks both;
//! errors name the file or variable and the key, such as `kintsugi.toml: limits.
//! max_envelope_bytes must be at least 1024`. `validate` checks the result after flags and
//! turns `tls_cert` and `tls_key` into `config.tls`. Every key is in `deploy/kintsugi.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::logging::LogFormat;

mod config;
mod env;
mod file;

pub use config::*;
pub use env::VARIABLES;

/// The default gRPC address: loopback, so a fresh server is never reachable from outside.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// The default data folder, relative to the working directory.
pub const DEFAULT_DATA: &str = "./kintsugi-data";

/// Everything one `kintsugi serve` needs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where gRPC is served.
    pub listen: SocketAddr,
    /// How log lines look: `plain` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// The TLS certificate chain (PEM); needs `tls_key` too.
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM); needs `tls_cert` too.
    pub tls_key: Option<PathBuf>,
    /// The data folder, metrics address, limits and timing. `config.tls` is set by
    /// `validate` from `tls_cert` and `tls_key`.
    pub config: Config,
    /// The file the settings came from, for messages.
    file: Option<PathBuf>,
}

/// A setting that cannot be used. The message names where it came from and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", .file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has a key or type the server does not know.
    #[error("{}{}: {message}", .file.display(), .line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Parse {
        file: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A value is out of range or malformed: `origin: key problem`.
    #[error("{origin}: {key} {problem}")]
    Invalid {
        /// The file, the environment variable, or `settings` (after flags).
        origin: String,
        key: String,
        problem: String,
    },
}

impl ServerSettings {
    /// The defaults: `127.0.0.1:7878`, `./kintsugi-data`, plain logs, no TLS, no metrics, and
    /// the limits of `Config::new`.
    pub fn defaults() -> ServerSettings {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            log_format: LogFormat::Plain,
            tls_cert: None,
            tls_key: None,
            config: Config::new(DEFAULT_DATA),
            file: None,
        }
    }

    /// Defaults, overridden by `file` (or the file named by `KINTSUGI_CONFIG` when `file` is
    /// `None`), overridden by the `KINTSUGI_*` environment variables. Checks each value.
    pub fn load(file: Option<&Path>) -> Result<ServerSettings, ConfigError> {
        Self::load_with_env(file, |name| std::env::var(name).ok())
    }

    /// `load` with another environment, for tests.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerSettings, ConfigError> {
        let mut settings = ServerSettings::defaults();
        let named = env(env::CONFIG_VARIABLE).filter(|v| !v.is_empty());
        let file = file.map(Path::to_path_buf).or(named.map(PathBuf::from));
        if let Some(file) = file {
            file::apply(&mut settings, &file)?;
            settings.check(&file.display().to_string())?;
            settings.file = Some(file);
        }
        env::apply(&mut settings, &env)?;
        Ok(settings)
    }

    /// The configuration file the settings were loaded from.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Checks the settings as a whole after flags were applied, and sets `config.tls` from
    /// `tls_cert` and `tls_key`.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let origin = "settings";
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                self.config.tls = Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                });
            }
            (Some(_), None) => {
                return Err(invalid(
                    origin,
                    "tls.key",
                    "is missing: TLS needs both tls.cert and tls.key (KINTSUGI_TLS_KEY, --tls-key)",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    origin,
                    "tls.cert",
                    "is missing: TLS needs both tls.cert and tls.key (KINTSUGI_TLS_CERT, --tls-cert)",
                ));
            }
            (None, None) => {}
        }
        self.check(origin)?;
        if self.config.tls.is_none() && !crate::is_loopback(self.listen) {
            return Err(invalid(
                origin,
                "listen",
                &format!(
                    "is {}, not a loopback address, and TLS is off: set tls.cert and tls.key \
                     (KINTSUGI_TLS_CERT/KINTSUGI_TLS_KEY, --tls-cert/--tls-key), or listen on \
                     127.0.0.1",
                    self.listen
                ),
            ));
        }
        if let Some(metrics) = self.config.metrics_listen
            && !self.config.metrics_public
            && !crate::is_loopback(metrics)
        {
            return Err(invalid(
                origin,
                "metrics.listen",
                &format!(
                    "is {metrics}, not a loopback address; metrics are plain HTTP, so set \
                     metrics.public = true (KINTSUGI_METRICS_PUBLIC=true) to serve them there"
                ),
            ));
        }
        Ok(())
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        self.config
            .check()
            .map_err(|e| invalid(origin, e.key, &e.problem))
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self::defaults()
    }
}

pub(crate) fn invalid(origin: &str, key: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        problem: problem.to_owned(),
    }
}

#[cfg(test)]
mod tests;
