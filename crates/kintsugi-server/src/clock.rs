//! Where the server's notion of "now" comes from.
//!
//! Invite expiry and snapshot retention depend on time. Handlers ask a `Clock` instead of
//! calling `SystemTime::now()` themselves, so a test can move time forward by a month and see
//! compaction happen, without waiting and without timing assertions.
//!
//! The server counts time in whole Unix seconds, as `UnixSeconds`, and spans of time as
//! `std::time::Duration`. (Devices count milliseconds; a bare number could be either, so the
//! server's times never travel as one.) Records on disk and the protocol's fields keep plain
//! `int64` seconds; `from_secs` and `as_secs` convert at those edges.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time: whole seconds since 1970-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixSeconds(i64);

impl UnixSeconds {
    /// The time `secs` seconds after 1970-01-01 UTC (before it, if negative).
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since 1970-01-01 UTC, for a record or a protocol field.
    pub const fn as_secs(self) -> i64 {
        self.0
    }

    /// The time `span` later, in whole seconds (a fraction of a second is dropped); the
    /// latest time there is if that is too far.
    pub fn plus(self, span: Duration) -> Self {
        let secs = i64::try_from(span.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(secs))
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn saturating_sub(self, earlier: UnixSeconds) -> Duration {
        let secs = self.0.saturating_sub(earlier.0);
        Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Now, in Unix seconds.
    fn now(&self) -> UnixSeconds;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        // A clock before 1970 is a broken machine; 0 keeps the server running rather than
        // panicking, and only makes invites expire early.
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        UnixSeconds(secs)
    }
}

/// A clock that only moves when told to: for tests. Its methods take plain seconds, the
/// literals a test writes, and name the unit.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: UnixSeconds) -> Self {
        Self {
            now: AtomicI64::new(now.as_secs()),
        }
    }

    /// Moves the clock forward by `by`, in whole seconds.
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Puts the clock at `now`.
    pub fn set(&self, now: UnixSeconds) {
        self.now.store(now.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixSeconds {
        UnixSeconds(self.now.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(UnixSeconds::from_secs(100));
        assert_eq!(clock.now().as_secs(), 100);
        clock.advance(Duration::from_secs(50));
        assert_eq!(clock.now().as_secs(), 150);
        clock.set(UnixSeconds::from_secs(7));
        assert_eq!(clock.now().as_secs(), 7);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now().as_secs() > 1_577_836_800);
    }

    #[test]
    fn seconds_add_spans_and_measure_them() {
        let then = UnixSeconds::from_secs(1_000);
        assert_eq!(then.plus(Duration::from_millis(61_900)).as_secs(), 1_061);
        assert_eq!(
            UnixSeconds::from_secs(i64::MAX - 1)
                .plus(Duration::MAX)
                .as_secs(),
            i64::MAX
        );
        assert_eq!(
            then.plus(Duration::from_secs(60)).saturating_sub(then),
            Duration::from_secs(60)
        );
        assert_eq!(
            then.saturating_sub(then.plus(Duration::from_secs(5))),
            Duration::ZERO
        );
        assert!(then < then.plus(Duration::from_secs(1)));
    }
}
