//! Throttles for what an attacker would repeat: sign-in attempts and wrong webhook
//! credentials. A keyed token bucket (the `governor` crate, GCRA) per client address or email.
//!
//! Two ways to count: [`Throttle::attempt`] counts every attempt (a flood of sign-ins, right or
//! wrong, is refused before it costs a password hash); [`Throttle::check`] then
//! [`Throttle::failed`] count only failures, and refuse every attempt — right or wrong — while
//! the key is over its quota, so guessing gets nowhere and the right credentials are not even
//! compared until the penalty ends.
//!
//! Wrong passwords per email are counted in the store instead ([`SharedFailures`]): gateway
//! replicas on one store then refuse a guesser together (counted per replica, two replicas
//! would let twice the guesses through). The other two stay per replica: a flood of sign-ins
//! costs the replica it reaches (password hashing), and webhook credentials are long random
//! secrets, so what those throttles protect is each replica's own work.

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
    /// Wrong passwords, per email, shared by the replicas.
    pub sign_in_failures_by_email: SharedFailures,
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

/// Failures per key counted in the store: [`Throttle::check`] and [`Throttle::failed`] for every
/// replica sharing it. A key's window starts at its first failure and lasts a minute; the
/// failure that takes it over `per_minute` refuses it until the window ends.
#[derive(Debug)]
pub struct SharedFailures {
    pool: sqlx::AnyPool,
    /// What the keys count (`sign_in`), so that kinds never share a key.
    kind: &'static str,
    per_minute: i64,
    failures: AtomicU32,
}

/// A failure window's length.
const WINDOW_MS: i64 = 60_000;

impl SharedFailures {
    pub fn new(pool: sqlx::AnyPool, kind: &'static str, per_minute: u32) -> Self {
        SharedFailures {
            pool,
            kind,
            per_minute: i64::from(per_minute.max(1)),
            failures: AtomicU32::new(0),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.kind)
    }

    /// Whether `key` may try now: `Err(wait)` while its failures are over the quota.
    pub async fn check(&self, key: &str) -> Result<Result<(), Duration>, sqlx::Error> {
        let blocked: Option<(i64,)> =
            sqlx::query_as("SELECT blocked_until_ms FROM throttle_failures WHERE key = $1")
                .bind(self.key(key))
                .fetch_optional(&self.pool)
                .await?;
        let now = crate::clock::now_ms();
        Ok(match blocked {
            Some((until,)) if until > now => Err(Duration::from_millis(
                u64::try_from(until - now).unwrap_or(0),
            )),
            _ => Ok(()),
        })
    }

    /// Counts a failure of `key` (one statement); the one over the quota blocks it until its
    /// window ends.
    pub async fn failed(&self, key: &str) -> Result<(), sqlx::Error> {
        let now = crate::clock::now_ms();
        sqlx::query(
            "INSERT INTO throttle_failures (key, window_start_ms, failures, blocked_until_ms)
             VALUES ($1, $2, 1, CASE WHEN 1 > $3 THEN $2 + $4 ELSE 0 END)
             ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN throttle_failures.window_start_ms > $2 - $4
                                THEN throttle_failures.failures + 1 ELSE 1 END,
                blocked_until_ms = CASE
                    WHEN throttle_failures.window_start_ms > $2 - $4
                         AND throttle_failures.failures + 1 > $3
                    THEN throttle_failures.window_start_ms + $4
                    ELSE throttle_failures.blocked_until_ms END,
                window_start_ms = CASE WHEN throttle_failures.window_start_ms > $2 - $4
                                       THEN throttle_failures.window_start_ms ELSE $2 END",
        )
        .bind(self.key(key))
        .bind(now)
        .bind(self.per_minute)
        .bind(WINDOW_MS)
        .execute(&self.pool)
        .await?;
        if self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            // Keys whose window and block are long over.
            sqlx::query(
                "DELETE FROM throttle_failures WHERE window_start_ms < $1 AND blocked_until_ms < $2",
            )
            .bind(now - WINDOW_MS)
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
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

    #[tokio::test]
    async fn shared_failures_are_one_count_for_every_replica_and_end_with_their_window() {
        let dir = std::env::temp_dir().join(format!(
            "adapter-test-shared-failures-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = crate::store::Store::for_tests(&dir).await.unwrap();
        // Two replicas: two counters on one store.
        let first = SharedFailures::new(store.pool(), "sign_in", 3);
        let second = SharedFailures::new(store.pool(), "sign_in", 3);
        first.failed("ada@example.com").await.unwrap();
        second.failed("ada@example.com").await.unwrap();
        first.failed("ada@example.com").await.unwrap();
        assert_eq!(second.check("ada@example.com").await.unwrap(), Ok(()));
        second.failed("ada@example.com").await.unwrap();
        for replica in [&first, &second] {
            let wait = replica.check("ada@example.com").await.unwrap().unwrap_err();
            assert!(
                wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
                "{wait:?}"
            );
        }
        assert_eq!(first.check("grace@example.com").await.unwrap(), Ok(()));
        assert_eq!(
            SharedFailures::new(store.pool(), "other", 3)
                .check("ada@example.com")
                .await
                .unwrap(),
            Ok(()),
            "another kind of failure is another key"
        );
        // The window over (moved back in time), the key starts afresh.
        sqlx::query(
            "UPDATE throttle_failures SET window_start_ms = window_start_ms - 60000, blocked_until_ms = blocked_until_ms - 60000",
        )
        .execute(&store.pool())
        .await
        .unwrap();
        assert_eq!(first.check("ada@example.com").await.unwrap(), Ok(()));
        first.failed("ada@example.com").await.unwrap();
        assert_eq!(second.check("ada@example.com").await.unwrap(), Ok(()));
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
