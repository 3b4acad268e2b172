//! The queue between a subscription's task and its client's connection, bounded in bytes,
//! that the task can empty at any time.
//!
//! A client that stops reading also stops its connection from polling the stream, so a plain
//! channel would keep what it buffered until the connection closes, however long that is. Here
//! the task holds the queue too: when a newer stream of the device replaces this one, or the
//! server stops, it drops everything queued and leaves only the final status, so an abandoned
//! stream keeps no more than the one event its connection already took.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use kintsugi_proto::v1 as proto;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::streams::STREAM_BUFFER_BYTES;

type Sent = Result<proto::SubscribeEvent, Status>;

/// Every event is charged at least this much, which also bounds how many can wait.
const MIN_CHARGE: usize = 1024;

/// An event waiting for the connection, with its share of the byte budget.
type Queued = (Sent, Option<OwnedSemaphorePermit>);

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<VecDeque<Queued>>,
    /// The stream's task, woken when an event is queued or the queue ends.
    reader: AtomicWaker,
    ended: AtomicBool,
    /// Set when the client's side is dropped; `gone` wakes the task then.
    dropped: AtomicBool,
    gone: Notify,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Queued>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The task's end of the queue.
#[derive(Debug)]
pub(crate) struct QueueWriter {
    shared: Arc<Shared>,
    budget: Arc<Semaphore>,
}

/// The client's end: the stream tonic sends.
#[derive(Debug)]
pub(crate) struct EventStream {
    shared: Arc<Shared>,
}

/// A new queue.
pub(crate) fn queue() -> (QueueWriter, EventStream) {
    let shared = Arc::new(Shared::default());
    let writer = QueueWriter {
        shared: Arc::clone(&shared),
        budget: Arc::new(Semaphore::new(STREAM_BUFFER_BYTES)),
    };
    (writer, EventStream { shared })
}

impl QueueWriter {
    /// Waits until `bytes` fit in the budget (all of it for a larger event, which then goes
    /// alone). Fails once the client is gone.
    pub(crate) async fn room(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let size = bytes.clamp(MIN_CHARGE, STREAM_BUFFER_BYTES) as u32;
        tokio::select! {
            biased;
            _ = self.client_gone() => None,
            permit = Arc::clone(&self.budget).acquire_many_owned(size) => permit.ok(),
        }
    }

    /// Queues an event holding `permit`, given back once the connection takes the event.
    pub(crate) fn push(&self, event: proto::SubscribeEvent, permit: OwnedSemaphorePermit) -> bool {
        if self.shared.dropped.load(Ordering::Acquire) {
            return false;
        }
        self.shared.queue().push_back((Ok(event), Some(permit)));
        self.shared.reader.wake();
        true
    }

    /// Drops everything still queued, then ends the stream with `status`.
    pub(crate) fn end_with(&self, status: Status) {
        let dropped: Vec<_> = {
            let mut queue = self.shared.queue();
            let dropped = queue.drain(..).collect();
            queue.push_back((Err(status), None));
            dropped
        };
        drop(dropped);
        self.shared.ended.store(true, Ordering::Release);
        self.shared.reader.wake();
    }

    /// Resolves once the client's side was dropped.
    pub(crate) async fn client_gone(&self) {
        loop {
            let gone = self.shared.gone.notified();
            if self.shared.dropped.load(Ordering::Acquire) {
                return;
            }
            gone.await;
        }
    }
}

impl Drop for QueueWriter {
    fn drop(&mut self) {
        self.shared.ended.store(true, Ordering::Release);
        self.shared.reader.wake();
    }
}

impl futures_util::Stream for EventStream {
    type Item = Sent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Sent>> {
        self.shared.reader.register(cx.waker());
        if let Some((event, _permit)) = self.shared.queue().pop_front() {
            return Poll::Ready(Some(event));
        }
        if self.shared.ended.load(Ordering::Acquire) {
            // An event queued between the pop above and the end is still delivered.
            return Poll::Ready(self.shared.queue().pop_front().map(|(event, _)| event));
        }
        Poll::Pending
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.shared.dropped.store(true, Ordering::Release);
        self.shared.queue().clear();
        self.shared.gone.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn heartbeat() -> proto::SubscribeEvent {
        let beat = proto::Heartbeat { server_time: 1 };
        proto::SubscribeEvent {
            event: Some(proto::subscribe_event::Event::Heartbeat(beat)),
        }
    }

    #[tokio::test]
    async fn ending_drops_what_waits_and_leaves_only_the_status() {
        let (writer, mut stream) = queue();
        for _ in 0..2 {
            let permit = writer.room(STREAM_BUFFER_BYTES / 2).await.expect("room");
            assert!(writer.push(heartbeat(), permit));
        }
        assert_eq!(writer.budget.available_permits(), 0, "the budget is full");
        writer.end_with(Status::aborted("replaced"));
        assert_eq!(
            writer.budget.available_permits(),
            STREAM_BUFFER_BYTES,
            "all given back"
        );
        let ended = stream
            .next()
            .await
            .expect("the status")
            .expect_err("an error");
        assert_eq!(ended.code(), tonic::Code::Aborted);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn the_budget_holds_back_the_writer_until_the_client_reads_or_goes() {
        let (writer, stream) = queue();
        let all = writer.room(STREAM_BUFFER_BYTES).await.expect("room");
        assert!(writer.push(heartbeat(), all));
        let more = tokio::time::timeout(std::time::Duration::from_millis(50), writer.room(1)).await;
        assert!(more.is_err(), "no room while the client does not read");
        drop(stream);
        assert!(writer.room(1).await.is_none(), "the client is gone");
        assert!(!writer.push(
            heartbeat(),
            Arc::new(Semaphore::new(1)).try_acquire_owned().expect("p")
        ));
    }
}
