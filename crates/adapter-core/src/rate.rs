//! A token bucket: at most `capacity` events at once, refilled at `per_second`. Bounds the work
//! an untrusted sender (a flood of postMessages) can cause.

#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last_ms: Option<f64>,
}

impl TokenBucket {
    pub fn new(capacity: u32, per_second: u32) -> Self {
        TokenBucket {
            capacity: f64::from(capacity),
            per_second: f64::from(per_second),
            tokens: f64::from(capacity),
            last_ms: None,
        }
    }

    /// Takes one token at time `now_ms` (any monotonic clock in milliseconds); `false` when the
    /// bucket is empty and the event should be dropped.
    pub fn try_take(&mut self, now_ms: f64) -> bool {
        if self.has_token(now_ms) {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a token could be taken at `now_ms`, without taking it.
    pub fn has_token(&mut self, now_ms: f64) -> bool {
        if let Some(last) = self.last_ms {
            let elapsed = (now_ms - last).max(0.0);
            if elapsed.is_finite() {
                self.tokens = (self.tokens + elapsed / 1000.0 * self.per_second).min(self.capacity);
            }
        }
        if now_ms.is_finite() {
            self.last_ms = Some(now_ms);
        }
        self.tokens >= 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_capacity_then_the_refill_rate() {
        let mut bucket = TokenBucket::new(100, 50);
        assert!(
            bucket.has_token(0.0) && bucket.has_token(0.0),
            "looking takes nothing"
        );
        let taken = (0..1_000).filter(|_| bucket.try_take(0.0)).count();
        assert!(!bucket.has_token(0.0));
        assert_eq!(taken, 100, "a burst gets the capacity");
        assert!(!bucket.try_take(10.0), "10 ms refill half a token");
        assert!(bucket.try_take(20.0), "20 ms refill one token");
        let over_a_second = (1..=1_000)
            .filter(|i| bucket.try_take(20.0 + f64::from(*i)))
            .count();
        assert_eq!(over_a_second, 50, "a drained bucket refills at the rate");
        assert_eq!(
            (0..1_000).filter(|_| bucket.try_take(1_000_000.0)).count(),
            100,
            "refill stops at capacity"
        );
    }

    #[test]
    fn clocks_going_backwards_or_nan_grant_nothing_extra() {
        let mut bucket = TokenBucket::new(1, 1);
        assert!(bucket.try_take(5_000.0));
        assert!(!bucket.try_take(1_000.0));
        assert!(!bucket.try_take(f64::NAN));
        assert!(!bucket.try_take(f64::INFINITY));
    }
}
