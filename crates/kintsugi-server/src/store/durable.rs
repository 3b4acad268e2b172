//! `Durable`: the promise that writes made so far are on disk.
//!
//! A backend answers `Store::durable()` with one of these. Backends whose writes are durable
//! when they return hand out a settled promise; the sled backend's promise settles when its
//! group-commit thread (`crate::durability`) has synced a batch that covers the call. Async
//! handlers await it; threads call `wait_blocking`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::StoreError;

/// A pending durability promise: await it in async code, or `wait_blocking` in threads.
#[derive(Debug)]
pub struct Durable(DurableState);

#[derive(Debug)]
enum DurableState {
    Ready(Option<Result<(), StoreError>>),
    Waiting(tokio::sync::oneshot::Receiver<Result<(), String>>),
}

impl Durable {
    /// Already settled, for backends whose writes are durable when they return.
    pub fn ready(result: Result<(), StoreError>) -> Self {
        Durable(DurableState::Ready(Some(result)))
    }

    /// Settled when a background syncer answers on the channel.
    pub fn waiting(receiver: tokio::sync::oneshot::Receiver<Result<(), String>>) -> Self {
        Durable(DurableState::Waiting(receiver))
    }

    /// Blocks the current thread until settled. Not for async contexts (it would stall the
    /// runtime), where the value is awaited instead.
    pub fn wait_blocking(self) -> Result<(), StoreError> {
        match self.0 {
            DurableState::Ready(result) => result.unwrap_or(Ok(())),
            DurableState::Waiting(receiver) => settle(receiver.blocking_recv()),
        }
    }
}

fn settle(
    answer: Result<Result<(), String>, tokio::sync::oneshot::error::RecvError>,
) -> Result<(), StoreError> {
    match answer {
        Ok(result) => result.map_err(StoreError::Durability),
        Err(_) => Err(StoreError::Durability(
            "the durability thread stopped".into(),
        )),
    }
}

impl Future for Durable {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            DurableState::Ready(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            DurableState::Waiting(receiver) => Pin::new(receiver).poll(cx).map(settle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn promises_settle_with_what_the_syncer_answers() {
        assert!(Durable::ready(Ok(())).await.is_ok());
        let (answer, waiting) = tokio::sync::oneshot::channel();
        let promise = Durable::waiting(waiting);
        let _ = answer.send(Err("disk full".to_owned()));
        let error = promise.await.expect_err("the sync failed");
        assert_eq!(error.to_string(), "making writes durable failed: disk full");
    }

    #[test]
    fn a_syncer_that_went_away_is_an_error_not_a_hang() {
        let (answer, waiting) = tokio::sync::oneshot::channel::<Result<(), String>>();
        drop(answer);
        let error = Durable::waiting(waiting)
            .wait_blocking()
            .expect_err("nobody answers");
        assert!(matches!(error, StoreError::Durability(_)), "{error}");
    }
}
