//! `kintsugi serve`: the blind sync server, until SIGINT or SIGTERM.
//!
//! Settings come from the defaults, then the TOML file (`--config` or `KINTSUGI_CONFIG`), then
//! `KINTSUGI_*` environment variables, then these flags; they are validated before anything
//! starts, and a bad one is named in a one-line error.

use kintsugi_server::{LogFormat, ServerSettings};

use crate::cli::{LogFormatArg, ServeArgs};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = ServerSettings::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(data) = args.data {
        settings.config.data_dir = data;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        settings.tls_cert = Some(cert);
        settings.tls_key = Some(key);
    }
    if let Some(metrics) = args.metrics_listen {
        settings.config.metrics_listen = Some(metrics);
    }
    if let Some(format) = args.log_format {
        settings.log_format = match format {
            LogFormatArg::Plain => LogFormat::Plain,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    let rates = &mut settings.config;
    if let Some(rate) = args.device_calls_per_second {
        rates.device_rate.per_second = rate;
    }
    if let Some(burst) = args.device_call_burst {
        rates.device_rate.burst = burst;
    }
    if let Some(rate) = args.pairing_calls_per_minute {
        rates.pairing_rate.per_second = rate / 60.0;
    }
    if let Some(burst) = args.pairing_call_burst {
        rates.pairing_rate.burst = burst;
    }
    settings.validate()?;
    kintsugi_server::logging::init(settings.log_format)?;
    kintsugi_server::serve_settings(settings, shutdown_signal()).await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM, so the server drains streams and flushes its store.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
