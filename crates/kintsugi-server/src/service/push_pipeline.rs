//! The push pipeline: one thread appends every waiting push in turn, one sync covers the batch.
//!
//! A push used to take its own blocking-pool thread for the append and then queue for the
//! group commit. With a thousand pushes in flight that meant hundreds of threads contending
//! for sled's transaction lock and two wake-ups per push. Here the handlers queue their
//! appends for one appender thread, which takes everything waiting, appends it in order, asks
//! the store for one durability promise covering the whole batch and hands the batch on. A
//! finisher thread waits for that promise, relays the batch's envelopes and answers each
//! push. While one batch is being synced the next one is being appended, so the sync covers
//! as many pushes as arrive during it: hundreds under load, one when idle.
//!
//! A push's work belongs to the pipeline once queued: a client that goes away cancels only its
//! wait for the answer, and what was stored is still made durable and relayed. Both threads
//! hold the server's liveness sender, so `run` closes the store only after they have finished.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::auth::AuthedDevice;
use crate::error::ServiceError;
use crate::fanout::{FanOut, SpaceEvent};
use crate::ids::DocId;
use crate::metrics::Metrics;
use crate::store::{AppendEnvelopes, Appended, Durable, Store, StoreError};

/// Pushes queued for the appender beyond which handlers wait for room.
const QUEUE_CAPACITY: usize = 8192;
/// The most pushes one batch appends before asking for a sync.
const MAX_BATCH: usize = 2048;

type Reply = oneshot::Sender<Result<Vec<u64>, ServiceError>>;

/// One queued push.
struct Job {
    who: AuthedDevice,
    append: AppendEnvelopes,
    reply: Reply,
}

/// A batch whose appends are done, waiting for its sync.
struct Appending {
    durable: Durable,
    outcomes: Vec<(Pushed, Result<Appended, StoreError>)>,
}

/// A push after its append: who pushed, to which document, and whom to answer.
struct Pushed {
    who: AuthedDevice,
    doc_id: DocId,
    reply: Reply,
}

/// What the pipeline's threads share with the handlers.
pub(crate) struct Relay {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) fanout: Arc<FanOut>,
    pub(crate) metrics: Arc<Metrics>,
}

/// The handlers' end of the pipeline. Dropping it lets both threads finish what is queued;
/// they are not joined (the last holder may be a runtime thread): `run` waits for them
/// through the liveness channel.
#[derive(Debug)]
pub(crate) struct PushPipeline {
    queue: mpsc::Sender<Job>,
}

impl PushPipeline {
    /// Starts the appender and finisher threads. `alive` is held until both have finished.
    pub(crate) fn start(relay: Relay, alive: mpsc::Sender<()>) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>(QUEUE_CAPACITY);
        let (batches, appended) = std_mpsc::channel::<Appending>();
        let store = Arc::clone(&relay.store);
        let keep_alive = alive.clone();
        std::thread::Builder::new()
            .name("kintsugi-appender".into())
            .spawn(move || append_batches(store, jobs, batches, keep_alive))?;
        std::thread::Builder::new()
            .name("kintsugi-relay".into())
            .spawn(move || finish_batches(relay, appended, alive))?;
        Ok(Self { queue })
    }

    /// Appends a push, waits until it is durable, relays it and returns its seqs.
    ///
    /// Every envelope of a successful push is relayed, retries included: the push that stored
    /// them may have been cut off before it relayed them (a crash, a cancelled task), and its
    /// retry is then all duplicates. Subscribers drop what they have already by position.
    pub(crate) async fn push(
        &self,
        who: AuthedDevice,
        append: AppendEnvelopes,
    ) -> Result<Vec<u64>, ServiceError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { who, append, reply };
        if self.queue.send(job).await.is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> ServiceError {
    ServiceError::from(StoreError::Durability(
        "the server is shutting down; push again once it is back".into(),
    ))
}

fn append_batches(
    store: Arc<dyn Store>,
    mut jobs: mpsc::Receiver<Job>,
    batches: std_mpsc::Sender<Appending>,
    alive: mpsc::Sender<()>,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut outcomes = Vec::with_capacity(jobs.len() + 1);
        let mut next = Some(first);
        while let Some(Job { who, append, reply }) = next.take() {
            let doc_id = append.doc_id;
            let result = store.append_envelopes(append);
            outcomes.push((Pushed { who, doc_id, reply }, result));
            if outcomes.len() < MAX_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        // Asked after the last append returned, so the promise covers the whole batch.
        let durable = store.durable();
        if batches.send(Appending { durable, outcomes }).is_err() {
            tracing::error!("the relay thread stopped; pushes cannot be answered");
            break;
        }
    }
    // The store goes before the liveness sender, so `run` closes it last.
    drop(store);
    drop(alive);
}

fn finish_batches(relay: Relay, batches: std_mpsc::Receiver<Appending>, alive: mpsc::Sender<()>) {
    for Appending { durable, outcomes } in batches {
        let synced = durable.wait_blocking().map_err(|error| error.to_string());
        let durable_at = Instant::now();
        for (job, appended) in outcomes {
            let answer = match (appended, &synced) {
                (Ok(appended), Ok(())) => Ok(relay.publish(&job, appended, durable_at)),
                (Err(error), _) => Err(ServiceError::from(error)),
                (Ok(_), Err(message)) => {
                    Err(ServiceError::from(StoreError::Durability(message.clone())))
                }
            };
            // A push whose client went away has nobody to answer; its work is done.
            let _ = job.reply.send(answer);
        }
    }
    drop(relay);
    drop(alive);
}

impl Relay {
    /// Counts a durable push, relays its envelopes and returns its seqs.
    fn publish(&self, pushed: &Pushed, appended: Appended, durable_at: Instant) -> Vec<u64> {
        let (space, doc_id) = (pushed.who.space_id, pushed.doc_id);
        tracing::debug!(
            space = %space, doc = %doc_id, fresh = appended.fresh.len(),
            retried = appended.retried.len(), "push stored"
        );
        let metrics = &self.metrics;
        metrics.pushes.inc();
        metrics.pushed_envelopes.inc_by(appended.fresh.len() as u64);
        let bytes: usize = appended
            .fresh
            .iter()
            .map(|e| e.envelope.nonce.len() + e.envelope.ciphertext.len())
            .sum();
        metrics.pushed_bytes.inc_by(bytes as u64);
        let server_seqs = appended.server_seqs.iter().map(|s| s.0).collect();
        let mut relayed = appended.retried;
        relayed.extend(appended.fresh);
        relayed.sort_by_key(|e| e.server_seq);
        if !relayed.is_empty() {
            let event = SpaceEvent::Appended {
                doc_id,
                meta: appended.meta,
                envelopes: Arc::new(relayed),
                durable_at,
            };
            self.fanout.publish(space, event);
        }
        server_seqs
    }
}
