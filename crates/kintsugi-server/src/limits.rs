//! Rate limits in memory, per device and per client address, on `governor`'s GCRA.
//!
//! A key may make `burst` calls at once and `per_second` in the long run (a token bucket, as
//! governor's GCRA is exactly); a call over that is refused with `ResourceExhausted` and how
//! long to wait. Device buckets are checked by the
//! authenticating interceptor, so one misbehaving phone cannot starve the others; address
//! buckets guard the two calls anyone can make (`CreateSpace`, which costs disk, and
//! `AcceptInvite`, which guesses at secrets). IPv6 clients are limited per /64, the block one
//! customer usually gets. Buckets live in memory only: a restart forgives everyone, which is
//! fine for limits whose windows are seconds long. Keys back at a full burst are forgotten once
//! many are tracked, so memory stays bounded whatever the traffic.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;

use crate::error::ServiceError;
use crate::ids::DeviceId;
use crate::settings::RateLimit;

/// Keys tracked before those back at a full burst are forgotten.
const MAX_TRACKED: usize = 10_000;
/// The longest wait a refusal names, and the period of a rate that is not positive.
const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

type Keyed<K, C> =
    governor::RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One limit, kept per key `K`, on clock `C` (a fake one in tests).
pub(crate) struct RateLimiter<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    keyed: Keyed<K, C>,
    clock: C,
}

impl<K: Hash + Eq + Clone, C: Clock> std::fmt::Debug for RateLimiter<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("tracked", &self.keyed.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub(crate) fn new(rate: RateLimit) -> Self {
        Self::with_clock(rate, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> RateLimiter<K, C> {
    fn with_clock(rate: RateLimit, clock: C) -> Self {
        Self {
            keyed: governor::RateLimiter::dashmap_with_clock(quota(rate), clock.clone()),
            clock,
        }
    }

    /// Takes one call for `key`, or says how long until one is allowed.
    pub(crate) fn check(&self, key: K) -> Result<(), Duration> {
        if self.keyed.len() >= MAX_TRACKED {
            self.keyed.retain_recent();
        }
        self.keyed
            .check_key(&key)
            .map_err(|refused| refused.wait_time_from(self.clock.now()).min(LONGEST_WAIT))
    }
}

/// The governor quota of a configured rate: a rate that is not positive allows the burst,
/// then one call a day.
fn quota(rate: RateLimit) -> Quota {
    let period = if rate.per_second.is_finite() && rate.per_second > 0.0 {
        Duration::from_secs_f64(1.0 / rate.per_second).min(LONGEST_WAIT)
    } else {
        LONGEST_WAIT
    };
    let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

/// The server's limiters.
#[derive(Debug)]
pub(crate) struct Limits {
    devices: RateLimiter<DeviceId>,
    addresses: RateLimiter<IpAddr>,
}

impl Limits {
    pub(crate) fn new(device_rate: RateLimit, pairing_rate: RateLimit) -> Self {
        Self {
            devices: RateLimiter::new(device_rate),
            addresses: RateLimiter::new(pairing_rate),
        }
    }

    /// Counts a call of `device`.
    pub(crate) fn device_call(&self, device: DeviceId) -> Result<(), ServiceError> {
        self.devices.check(device).map_err(|wait| {
            ServiceError::ResourceExhausted(format!(
                "rate limit: this device made too many calls; slow down and retry in {} s",
                whole_seconds(wait)
            ))
        })
    }

    /// Counts a pairing call from `address`; calls without an address (not over TCP) pass.
    pub(crate) fn pairing_call(&self, address: Option<IpAddr>) -> Result<(), ServiceError> {
        let Some(address) = address else {
            return Ok(());
        };
        self.addresses.check(client_block(address)).map_err(|wait| {
            ServiceError::ResourceExhausted(format!(
                "rate limit: too many pairing calls from your address; retry in {} s",
                whole_seconds(wait)
            ))
        })
    }
}

/// Seconds to wait, rounded up, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The address a client is limited by: IPv4 as is, IPv6 by its /64.
fn client_block(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use governor::clock::FakeRelativeClock;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let clock = FakeRelativeClock::default();
        let rate = RateLimit {
            per_second: 2.0,
            burst: 3,
        };
        let limiter = RateLimiter::with_clock(rate, clock.clone());
        for _ in 0..3 {
            assert!(limiter.check(1).is_ok());
        }
        let wait = limiter.check(1).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.check(2).is_ok(), "other keys have their own bucket");
        clock.advance(Duration::from_millis(500));
        assert!(limiter.check(1).is_ok());
        assert!(limiter.check(1).is_err());
    }

    #[test]
    fn a_rate_that_is_not_positive_allows_the_burst_then_a_day_apart() {
        let limiter = RateLimiter::with_clock(
            RateLimit {
                per_second: 0.0,
                burst: 0,
            },
            FakeRelativeClock::default(),
        );
        assert!(limiter.check(1).is_ok());
        assert_eq!(limiter.check(1), Err(LONGEST_WAIT));
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("an address");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("an address");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("an address");
        assert_eq!(client_block(a), client_block(b));
        assert_eq!(
            client_block(mapped),
            "10.0.0.1".parse::<IpAddr>().expect("v4")
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        let limits = Limits::new(
            RateLimit {
                per_second: 1.0,
                burst: 1,
            },
            RateLimit {
                per_second: 1.0,
                burst: 1,
            },
        );
        let device = DeviceId([1; 16]);
        assert!(limits.device_call(device).is_ok());
        let refused = limits.device_call(device).expect_err("limited").to_string();
        assert_eq!(
            refused,
            "rate limit: this device made too many calls; slow down and retry in 1 s"
        );
        assert!(limits.pairing_call(None).is_ok());
    }
}
