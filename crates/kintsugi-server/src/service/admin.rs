//! `AdminService`: the operator's calls on a running server, behind the admin token.
//!
//! `Stats` counts what the store holds. `Backup` exports a consistent copy of the store (the
//! store pauses writes while it copies, not while the copy is sent) into a temporary file in
//! the data folder, then streams that file in chunks and deletes it; the file is the format of
//! `store::dump`, so `kintsugi admin backup --server` writes exactly what the offline backup
//! writes. A leftover temporary file from a crash is removed at the next start. `Vacuum`
//! rewrites the store so that deleted data leaves its files.

use std::io::{BufWriter, Read, Write};
use std::sync::Arc;

use kintsugi_proto::admin::v1 as proto;
use kintsugi_proto::admin::v1::admin_service_server::AdminService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::State;
use crate::error::ServiceError;
use crate::store::StoreError;

/// The largest backup chunk.
const MAX_CHUNK: usize = 1024 * 1024;

/// The admin handlers.
#[derive(Debug, Clone)]
pub(crate) struct AdminApi {
    state: Arc<State>,
}

type Chunk = Result<proto::BackupChunk, Status>;

impl AdminApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    /// Exports the store into a temporary file in the data folder.
    async fn export(&self) -> Result<(tempfile::NamedTempFile, u64), ServiceError> {
        self.state
            .blocking(|state| {
                let file = tempfile::Builder::new()
                    .prefix(crate::store::BACKUP_TMP_PREFIX)
                    .suffix(".tmp")
                    .tempfile_in(&state.config.data_dir)
                    .map_err(StoreError::Io)?;
                let mut out = BufWriter::new(file.as_file());
                let summary = state.store.export(&mut out)?;
                out.flush().map_err(StoreError::Io)?;
                drop(out);
                Ok((file, summary.bytes))
            })
            .await
    }
}

/// Sends the file in chunks; ends early if the client leaves or the server stops.
async fn send_file(
    state: Arc<State>,
    file: tempfile::NamedTempFile,
    total: u64,
    chunk_size: usize,
    tx: mpsc::Sender<Chunk>,
) {
    let mut stop = state.stop.clone();
    let mut reader = match file.reopen() {
        Ok(reader) => reader,
        Err(error) => {
            let status = Status::from(ServiceError::Internal(format!("backup file: {error}")));
            let _ = tx.send(Err(status)).await;
            return;
        }
    };
    loop {
        let read = tokio::task::spawn_blocking(move || {
            let mut buffer = vec![0u8; chunk_size];
            let mut filled = 0;
            while filled < buffer.len() {
                match reader.read(&mut buffer[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(error) => return Err(error),
                }
            }
            buffer.truncate(filled);
            Ok((reader, buffer))
        })
        .await;
        let (next, data) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(error)) => {
                let status = Status::from(ServiceError::Internal(format!("backup file: {error}")));
                let _ = tx.send(Err(status)).await;
                return;
            }
            Err(error) => {
                let _ = tx.send(Err(Status::from(ServiceError::from(error)))).await;
                return;
            }
        };
        reader = next;
        if data.is_empty() {
            break;
        }
        let chunk = proto::BackupChunk {
            data,
            total_bytes: total,
        };
        tokio::select! {
            sent = tx.send(Ok(chunk)) => if sent.is_err() { break },
            _ = stop.changed() => {
                let _ = tx.try_send(Err(Status::unavailable("the server is shutting down; take the backup again")));
                break;
            }
        }
    }
    // Deletes the temporary copy; the state is released after it.
    drop(file);
    drop(state);
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn stats(
        &self,
        _request: Request<proto::StatsRequest>,
    ) -> Result<Response<proto::StatsResponse>, Status> {
        let stats = self
            .state
            .blocking(|state| Ok(state.store.stats()?))
            .await?;
        Ok(Response::new(proto::StatsResponse {
            spaces: stats.spaces,
            devices: stats.devices,
            documents: stats.documents,
            envelopes: stats.envelopes,
            bytes: stats.bytes,
        }))
    }

    type BackupStream = ReceiverStream<Chunk>;

    async fn backup(
        &self,
        _request: Request<proto::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let (file, total) = self.export().await?;
        tracing::info!(bytes = total, "backup taken; sending it");
        let chunk_size = (self.state.config.max_message_bytes / 2).clamp(1024, MAX_CHUNK);
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(send_file(self.state.clone(), file, total, chunk_size, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn vacuum(
        &self,
        _request: Request<proto::VacuumRequest>,
    ) -> Result<Response<proto::VacuumResponse>, Status> {
        let report = self
            .state
            .blocking(|state| Ok(state.store.vacuum()?))
            .await?;
        tracing::info!(
            before = report.bytes_before,
            after = report.bytes_after,
            "store vacuumed"
        );
        crate::metrics::refresh_store_gauge(&self.state).await;
        Ok(Response::new(proto::VacuumResponse {
            bytes_before: report.bytes_before,
            bytes_after: report.bytes_after,
        }))
    }
}
