//! `kintsugi admin`: stats, backup and restore for the person who runs the server, on a stopped
//! server's data folder or through a running server's admin service.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use kintsugi_proto::admin::v1::admin_service_client::AdminServiceClient;
use kintsugi_proto::admin::v1::{BackupRequest, StatsRequest, VacuumRequest};
use kintsugi_server::offline_admin as admin;
use serde_json::json;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::cli::{AdminCommand, AdminTarget};
use crate::output::Output;

pub async fn run(command: AdminCommand, out: Output) -> anyhow::Result<()> {
    match command {
        AdminCommand::Stats(target) => {
            let stats = match &target.data {
                Some(dir) => {
                    let s = blocking(dir, admin::stats).await?;
                    json!({ "spaces": s.spaces, "devices": s.devices, "documents": s.documents, "envelopes": s.envelopes, "bytes": s.bytes })
                }
                None => {
                    let (mut client, token) = connect(&target).await?;
                    let s = client
                        .stats(authed(StatsRequest {}, &token)?)
                        .await
                        .map_err(status)?
                        .into_inner();
                    json!({ "spaces": s.spaces, "devices": s.devices, "documents": s.documents, "envelopes": s.envelopes, "bytes": s.bytes })
                }
            };
            out.print(&stats, || {
                format!(
                    "{} space(s), {} device(s), {} document(s), {} envelope(s), {} bytes of ciphertext",
                    stats["spaces"], stats["devices"], stats["documents"], stats["envelopes"], stats["bytes"]
                )
            })
        }
        AdminCommand::Backup { target, out: file } => {
            let bytes = match &target.data {
                Some(dir) => {
                    let (dir, file) = (dir.clone(), file.clone());
                    tokio::task::spawn_blocking(move || admin::backup(&dir, &file))
                        .await??
                        .bytes
                }
                None => online_backup(&target, &file).await?,
            };
            admin::verify_backup(&file)?;
            out.print(&json!({ "file": file, "bytes": bytes }), || {
                format!(
                    "wrote a verified backup of {bytes} bytes to {}",
                    file.display()
                )
            })
        }
        AdminCommand::Vacuum(target) => {
            let (before, after) = match &target.data {
                Some(dir) => {
                    let report = blocking(dir, admin::vacuum).await?;
                    (report.bytes_before, report.bytes_after)
                }
                None => {
                    let (mut client, token) = connect(&target).await?;
                    let r = client
                        .vacuum(authed(VacuumRequest {}, &token)?)
                        .await
                        .map_err(status)?
                        .into_inner();
                    (r.bytes_before, r.bytes_after)
                }
            };
            out.print(
                &json!({ "bytes_before": before, "bytes_after": after }),
                || format!("rewrote the store: {before} bytes of files before, {after} after"),
            )
        }
        AdminCommand::Restore { file, data } => {
            let (f, d) = (file.clone(), data.clone());
            let summary = tokio::task::spawn_blocking(move || admin::restore(&f, &d)).await??;
            out.print(&json!({ "data": data, "entries": summary.entries }), || {
                format!("restored {} entries into {}; start the server there with `kintsugi serve --data {}`", summary.entries, data.display(), data.display())
            })
        }
    }
}

async fn blocking<T: Send + 'static>(
    dir: &Path,
    f: fn(&Path) -> Result<T, admin::AdminError>,
) -> anyhow::Result<T> {
    let dir = dir.to_path_buf();
    Ok(tokio::task::spawn_blocking(move || f(&dir)).await??)
}

/// Streams a backup from a running server into `file`, written whole or not at all.
async fn online_backup(target: &AdminTarget, file: &Path) -> anyhow::Result<u64> {
    let (mut client, token) = connect(target).await?;
    let mut stream = client
        .backup(authed(BackupRequest {}, &token)?)
        .await
        .map_err(status)?
        .into_inner();
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let mut writer = kintsugi_server::owner_only::create_private_file(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let mut written = 0u64;
    while let Some(chunk) = stream.message().await.map_err(status)? {
        writer
            .write_all(&chunk.data)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        written += chunk.data.len() as u64;
    }
    writer
        .sync_all()
        .with_context(|| format!("cannot sync {}", partial.display()))?;
    std::fs::rename(&partial, file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(written)
}

async fn connect(target: &AdminTarget) -> anyhow::Result<(AdminServiceClient<Channel>, String)> {
    let (Some(url), Some(token_file)) = (&target.server, &target.token_file) else {
        bail!(
            "pass --data DIR for a stopped server, or --server URL --token-file DATA/admin-token for a running one"
        );
    };
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("cannot read the admin token {}", token_file.display()))?
        .trim()
        .to_string();
    kintsugi_core::check_url(url)?;
    let mut endpoint =
        Channel::from_shared(url.clone()).with_context(|| format!("{url} is not a server URL"))?;
    if url.starts_with("https://") {
        let tls = match &target.ca_cert {
            Some(path) => ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(kintsugi_core::read_ca_cert(path)?)),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel = endpoint.connect().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the server at {url}: {}",
            kintsugi_server::error_chain(&e)
        )
    })?;
    Ok((
        AdminServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024),
        token,
    ))
}

fn authed<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .context("the admin token file does not hold a token")?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

fn status(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("the server refused: {}", status.message())
}
