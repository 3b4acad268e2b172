//! Live sync: a Subscribe stream that applies envelopes as they arrive and pushes each local
//! change at once, reconnecting with jittered exponential back-off when the network drops.
//!
//! Offline is the normal case for a phone, so losing the server is reported, not fatal; only
//! errors that retrying cannot fix (a revoked device, tampered data, a damaged local store)
//! end the watch.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kintsugi_proto::v1::subscribe_event::Event;
use kintsugi_proto::v1::{DocCursor, SubscribeRequest};
use rand::Rng;
use tokio_stream::StreamExt;

use super::client::Connection;
use super::engine::stops_everything;
use super::{DocFailure, SetAside, SyncReport};
use crate::docs::DocKind;
use crate::error::{CoreError, Result};
use crate::replica::Replica;

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// What a live sync reports as it goes.
#[derive(Debug)]
pub enum WatchEvent {
    /// Connected and caught up.
    Synced(SyncReport),
    /// The live stream is open: from now on, what the server logs arrives as it happens.
    Subscribed,
    /// Changes from other devices arrived and were applied: their hashes in log order, and the
    /// server position the document is now synced to.
    Received {
        doc: DocKind,
        changes: Vec<automerge::ChangeHash>,
        cursor: u64,
    },
    /// Local changes were pushed.
    Pushed(usize),
    /// An envelope that arrived could not be accepted; it was set aside.
    SetAside(SetAside),
    /// One document could not be synced just now; the others go on.
    DocFailed(DocFailure),
    /// The connection failed; the next attempt is in `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
}

/// Jittered exponential back-off: each failure doubles the ceiling, the wait is drawn from its
/// upper half, so many phones reconnecting after an outage do not hit the server in step.
#[derive(Debug)]
struct Backoff {
    ceiling: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            ceiling: FIRST_RETRY,
        }
    }

    fn reset(&mut self) {
        self.ceiling = FIRST_RETRY;
    }

    fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (self.ceiling * 2).min(LAST_RETRY);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis))
    }
}

/// Errors that retrying cannot fix.
fn is_fatal(error: &CoreError) -> bool {
    !matches!(error, CoreError::Unreachable { .. } | CoreError::Server(_))
}

impl Replica {
    /// Syncs live until `shutdown` completes or an error that retrying cannot fix occurs.
    pub async fn watch(
        self: &Arc<Self>,
        shutdown: impl Future<Output = ()>,
        mut on_event: impl FnMut(WatchEvent),
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let mut backoff = Backoff::new();
        loop {
            let outcome = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                outcome = self.watch_connected(&mut on_event, &mut backoff) => outcome,
            };
            let reason = match outcome {
                Err(error) if is_fatal(&error) => return Err(error),
                Err(error) => error.to_string(),
                Ok(()) => "the server closed the stream".to_string(),
            };
            let retry_in = backoff.next_delay();
            on_event(WatchEvent::Disconnected { reason, retry_in });
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(retry_in) => {}
            }
        }
    }

    async fn watch_connected(
        self: &Arc<Self>,
        on_event: &mut impl FnMut(WatchEvent),
        backoff: &mut Backoff,
    ) -> Result<()> {
        let report = self.sync().await?;
        on_event(WatchEvent::Synced(report));
        let id = &self.identity;
        let mut conn =
            Connection::open(&id.server_url, id.ca_cert_pem.as_deref(), &id.token, true).await?;
        let mut cursors = DocKind::ALL
            .into_iter()
            .map(|kind| {
                let doc = self.identity.keys.doc_id(kind);
                Ok(DocCursor {
                    doc_id: doc.as_bytes().to_vec(),
                    after_seq: self.store.cursor(doc)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The roster log too, so a revocation or a new epoch takes effect while watching.
        cursors.push(DocCursor {
            doc_id: crate::roster::ROSTER_DOC.as_bytes().to_vec(),
            after_seq: self.roster()?.len(),
        });
        let mut stream = conn
            .sync
            .subscribe(SubscribeRequest { cursors })
            .await
            .map_err(|s| conn.error(s))?
            .into_inner();
        backoff.reset();
        on_event(WatchEvent::Subscribed);
        // Edits made while the stream was being opened.
        self.push_live(&mut conn, on_event).await?;
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    None => return Ok(()),
                    Some(Err(status)) => return Err(conn.error(status)),
                    Some(Ok(event)) => {
                        if let Some(Event::Envelopes(batch)) = event.event {
                            let applying = self.off_runtime(move |replica| replica.apply_live(batch));
                            applying.await?.into_iter().for_each(&mut *on_event);
                        }
                    }
                },
                _ = self.changed.notified() => self.push_live(&mut conn, on_event).await?,
            }
        }
    }

    /// Pushes the outbox and reports what went and which documents were refused.
    async fn push_live(
        self: &Arc<Self>,
        conn: &mut Connection,
        on_event: &mut impl FnMut(WatchEvent),
    ) -> Result<()> {
        self.renew_owed_epochs(conn).await?;
        let report = self.push_outbox(conn).await?;
        if report.pushed > 0 {
            on_event(WatchEvent::Pushed(report.pushed));
        }
        for failure in report.failed {
            on_event(WatchEvent::DocFailed(failure));
        }
        Ok(())
    }

    /// Applies envelopes that arrived live and says what happened. A document that cannot
    /// take them is reported and the watch goes on; only errors that retrying cannot fix end it.
    fn apply_live(&self, batch: kintsugi_proto::v1::DocEnvelopes) -> Result<Vec<WatchEvent>> {
        if batch.doc_id == crate::roster::ROSTER_DOC.as_bytes() {
            self.accept_roster_entries(&batch.envelopes)?;
            // A new epoch may be owed, or queued changes due to be sealed again: push now.
            self.changed.notify_one();
            return Ok(Vec::new());
        }
        let Some(kind) = self.identity.keys.kind_of(&batch.doc_id) else {
            return Ok(Vec::new());
        };
        if !self.knows_epochs_of(kind, &batch.envelopes)? {
            // Sealed under an epoch whose roster entry has not arrived: sync again from the
            // roster on rather than set the envelopes aside.
            return Err(CoreError::Server(
                "a change under a key epoch this device has not seen yet arrived; syncing again"
                    .into(),
            ));
        }
        match self.apply_page(kind, batch.snapshot, &batch.envelopes) {
            Ok(applied) => {
                let received = (!applied.received.is_empty()).then_some(WatchEvent::Received {
                    doc: kind,
                    changes: applied.received,
                    cursor: applied.cursor,
                });
                let set_aside = applied.set_aside.into_iter().map(WatchEvent::SetAside);
                Ok(received.into_iter().chain(set_aside).collect())
            }
            Err(error) if stops_everything(&error) || is_local(&error) => Err(error),
            Err(error) => Ok(vec![WatchEvent::DocFailed(DocFailure {
                doc: kind.name(),
                error: error.to_string(),
            })]),
        }
    }
}

/// Errors of this device's own storage: retrying the network does not fix them.
fn is_local(error: &CoreError) -> bool {
    matches!(
        error,
        CoreError::LocalStoreDamaged { .. } | CoreError::LocalIo { .. } | CoreError::Busy(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_ceiling_with_jitter_and_resets() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(first <= FIRST_RETRY && first >= FIRST_RETRY / 2);
        for _ in 0..20 {
            assert!(backoff.next_delay() <= LAST_RETRY);
        }
        assert_eq!(backoff.ceiling, LAST_RETRY);
        backoff.reset();
        assert!(backoff.next_delay() <= FIRST_RETRY);
    }
}
