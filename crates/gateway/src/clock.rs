//! The wall clock, in the one unit the gateway stores: milliseconds since the Unix epoch
//! ([`now_ms`]), and the outbox's [`Clock`]: the same, seen through an offset that tests move
//! forward, so that hours of retries and circuit-breaker probes can be checked in seconds. Only
//! the outbox's scheduling reads the offset (when an operation is due, how long it has been
//! failing, when the breaker probes); leases and the Kustomer rate windows keep the real clock.
//! Depends on nothing else of the gateway.

use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::{SystemTime, UNIX_EPOCH},
};

/// Now, in milliseconds since the Unix epoch (0 on a clock set before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The system clock plus an offset (zero unless a test advanced it). Cheap to clone; clones
/// share the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Now, Unix ms.
    pub fn now_ms(&self) -> i64 {
        now_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone) forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_offset() {
        let clock = Clock::default();
        let other = clock.clone();
        let before = other.now_ms();
        clock.advance(std::time::Duration::from_secs(1800));
        let after = other.now_ms();
        assert!(after - before >= 1_800_000, "{before} → {after}");
        assert!(after - before < 1_810_000, "{before} → {after}");
    }
}
