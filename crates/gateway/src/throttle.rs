//! Throttles for what an attacker would repeat: sign-in attempts and wrong webhook
//! credentials. A keyed token bucket (the `governor` crate, GCRA) per client address or email.
//!
//! Two ways to count: [`Throttle::attempt`] counts every attempt (a flood of sign-ins, right or
//! wrong, is refused before it costs a password hash); [`Throttle::check`] then
//! [`Throttle::failed`] count only failures, and refuse every attempt — right or wrong — while
//! the key is over its quota, so guessing gets nowhere and the right credentials are not even
//! compared until the penalty ends.

use std::{
    collections::HashMap,
    hash::Hash,
    num::NonZeroU32,
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use governor::{
    clock::{Clock, DefaultClock},
    DefaultKeyedRateLimiter, Quota, RateLimiter,
};

/// What the gateway throttles.
#[derive(Debug)]
pub struct Throttles {
    /// Every sign-in attempt, per client address.
    pub sign_in_by_address: Throttle<std::net::IpAddr>,
    /// Wrong passwords, per email.
    pub sign_in_failures_by_email: Throttle<String>,
    /// Wrong webhook credentials, per client address.
    pub webhook_failures_by_address: Throttle<std::net::IpAddr>,
}

/// How many checks between two prunings of forgotten keys.
const PRUNE_EVERY: u32 = 1024;

/// A per-key budget of `per_minute` (also the burst).
pub struct Throttle<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    /// Keys over their failure quota, and until when.
    blocked: Mutex<HashMap<K, Instant>>,
    checks: AtomicU32,
}

impl<K: Hash + Eq + Clone> std::fmt::Debug for Throttle<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("keys", &self.limiter.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// `per_minute` attempts a minute per key, all of them at once at most (0 is taken as 1).
    pub fn per_minute(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Throttle {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            blocked: Mutex::default(),
            checks: AtomicU32::new(0),
        }
    }

    fn prune(&self) {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            let now = Instant::now();
            if let Ok(mut blocked) = self.blocked.lock() {
                blocked.retain(|_, until| *until > now);
            }
        }
    }

    /// Counts one attempt of `key`; `Err(wait)` when it is over its budget (not counted then).
    pub fn attempt(&self, key: &K) -> Result<(), Duration> {
        self.prune();
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Whether `key` may try now: `Err(wait)` while its failures are over the quota.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.prune();
        let Ok(blocked) = self.blocked.lock() else {
            return Ok(());
        };
        match blocked.get(key) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Counts a failure of `key`; once over the quota, [`Throttle::check`] refuses it until a
    /// failure's worth of budget is back.
    pub fn failed(&self, key: &K) {
        if let Err(wait) = self.attempt(key) {
            if let Ok(mut blocked) = self.blocked.lock() {
                blocked.insert(key.clone(), Instant::now() + wait);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_over_the_budget_are_refused_per_key() {
        let throttle = Throttle::per_minute(3);
        for _ in 0..3 {
            assert!(throttle.attempt(&"a").is_ok());
        }
        let wait = throttle.attempt(&"a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            throttle.attempt(&"b").is_ok(),
            "another key has its own budget"
        );
    }

    #[test]
    fn only_failures_count_and_over_the_quota_every_try_is_refused() {
        let throttle = Throttle::per_minute(2);
        for _ in 0..10 {
            assert!(throttle.check(&"ip").is_ok(), "successes are not counted");
        }
        throttle.failed(&"ip");
        throttle.failed(&"ip");
        assert!(throttle.check(&"ip").is_ok(), "two failures fit the quota");
        throttle.failed(&"ip");
        let wait = throttle.check(&"ip").unwrap_err();
        assert!(wait <= Duration::from_secs(30), "{wait:?}");
        assert!(throttle.check(&"other").is_ok());
    }
}
