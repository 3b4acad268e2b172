//! The phone's notion of time: Unix milliseconds, as a type of its own.
//!
//! The server counts Unix seconds; the phone counts milliseconds (Automerge change times,
//! journal entries, approvals). `UnixMillis` keeps the two from being mixed up: a bare number
//! cannot be passed where a time is expected, and the only way in from the operating system
//! or a test is a constructor that names the unit.

use std::sync::Arc;

use autosurgeon::reconcile::NoKey;
use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};
use serde::Serialize;

/// Milliseconds since 1970-01-01 UTC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UnixMillis(i64);

impl UnixMillis {
    /// The time `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down.
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

/// Stored in documents as the plain integer it always was.
impl Hydrate for UnixMillis {
    fn hydrate_int(millis: i64) -> Result<Self, HydrateError> {
        Ok(Self(millis))
    }

    fn hydrate_uint(millis: u64) -> Result<Self, HydrateError> {
        i64::try_from(millis)
            .map(Self)
            .map_err(|_| HydrateError::unexpected("a time in milliseconds", millis.to_string()))
    }
}

impl Reconcile for UnixMillis {
    type Key<'a> = NoKey;

    fn reconcile<R: Reconciler>(&self, reconciler: R) -> Result<(), R::Error> {
        self.0.reconcile(reconciler)
    }
}

impl From<UnixMillis> for automerge::ScalarValue {
    fn from(time: UnixMillis) -> Self {
        automerge::ScalarValue::Int(time.0)
    }
}

/// The device's clock; injected so tests can drive time.
pub type Clock = Arc<dyn Fn() -> UnixMillis + Send + Sync>;

/// The operating system's wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        UnixMillis(millis)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_stored_as_a_plain_integer() {
        let mut doc = automerge::AutoCommit::new();
        autosurgeon::reconcile_prop(&mut doc, automerge::ROOT, "at", UnixMillis(42))
            .expect("reconcile");
        let stored: i64 = autosurgeon::hydrate_prop(&doc, automerge::ROOT, "at").expect("hydrate");
        assert_eq!(stored, 42);
        let back: UnixMillis =
            autosurgeon::hydrate_prop(&doc, automerge::ROOT, "at").expect("hydrate");
        assert_eq!(back, UnixMillis(42));
    }

    #[test]
    fn seconds_round_down_also_before_the_epoch() {
        assert_eq!(UnixMillis::from_millis(1_999).as_secs(), 1);
        assert_eq!(UnixMillis::from_millis(-1).as_secs(), -1);
    }
}
