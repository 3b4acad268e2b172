//! `kintsugi serve`: the blind sync server, until SIGINT or SIGTERM.

use anyhow::Context;
use kintsugi_server::Config;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (is another server running there?)",
            args.listen
        )
    })?;
    let addr = listener.local_addr().context("listening address")?;
    tracing::info!(%addr, data = %args.data.display(), "kintsugi sync server listening");
    kintsugi_server::run(listener, Config::new(&args.data), shutdown_signal()).await?;
    tracing::info!("kintsugi sync server stopped");
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
