//! Rate limits: token buckets in memory, per device and per client address.
//!
//! A bucket holds up to `burst` tokens and refills at `per_second`; a call takes one token or
//! is refused with `ResourceExhausted` and how long to wait. Device buckets are checked by the
//! authenticating interceptor, so one misbehaving phone cannot starve the others; address
//! buckets guard the two calls anyone can make (`CreateSpace`, which costs disk, and
//! `AcceptInvite`, which guesses at secrets). IPv6 clients are limited per /64, the block one
//! customer usually gets. Buckets live in memory only: a restart forgives everyone, which is
//! fine for limits whose windows are seconds long. Full buckets are forgotten once many are
//! tracked, so memory stays bounded whatever the traffic.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimit;
use crate::error::ServiceError;
use crate::ids::DeviceId;

/// Buckets tracked before full ones are forgotten.
const MAX_TRACKED: usize = 10_000;

/// Token buckets keyed by `K`.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    rate: RateLimit,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub(crate) fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or says how long until one is there.
    pub(crate) fn check(&self, key: K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.rate.burst.max(1));
        let per_second = if self.rate.per_second > 0.0 {
            self.rate.per_second
        } else {
            f64::MIN_POSITIVE
        };
        let refill = |bucket: &Bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            (bucket.tokens + elapsed * per_second).min(burst)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&key) {
            buckets.retain(|_, bucket| refill(bucket) < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let tokens = refill(bucket);
        bucket.updated = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            bucket.tokens = tokens;
            let wait = ((1.0 - tokens) / per_second).min(86_400.0);
            Err(Duration::from_secs_f64(wait))
        }
    }
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

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(1, start).is_ok());
        }
        let wait = limiter.check_at(1, start).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(500));
        assert!(
            limiter.check_at(2, start).is_ok(),
            "other keys have their own bucket"
        );
        assert!(
            limiter
                .check_at(1, start + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            limiter
                .check_at(1, start + Duration::from_millis(500))
                .is_err()
        );
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
