//! Exponential backoff with jitter, for every retry over a network (the widget's link to the
//! gateway, the gateway's calls to its upstreams).

use std::time::Duration;

/// Delays grow from `initial` by `factor` per failed attempt, up to `max`. Jitter spreads
/// retries of many clients so that a restarted gateway is not hit by all of them at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: u32,
    /// Fraction of the delay that is randomised, in `0.0..=1.0`: the delay is drawn from
    /// `[d * (1 - jitter), d]`.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(15),
            factor: 2,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1 for the first retry). `random` is a uniform
    /// draw in `[0, 1)` supplied by the caller, so this stays pure and testable.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let growth = self.factor.max(1).saturating_pow(exponent);
        let full = self
            .initial
            .checked_mul(growth)
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = unit(self.jitter) * unit(random);
        full.mul_f64(1.0 - jitter)
    }
}

/// `x` clamped to `[0, 1]`, with NaN as 0 (`f64::clamp` keeps NaN, and a NaN factor would
/// panic in `Duration::mul_f64`).
fn unit(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_grow_then_cap_without_jitter() {
        let backoff = Backoff::default();
        let cases = [
            (0, ms(500)),
            (1, ms(500)),
            (2, ms(1_000)),
            (3, ms(2_000)),
            (4, ms(4_000)),
            (5, ms(8_000)),
            (6, ms(15_000)),
            (7, ms(15_000)),
            (1_000, ms(15_000)),
            (u32::MAX, ms(15_000)),
        ];
        for (attempt, want) in cases {
            assert_eq!(backoff.delay(attempt, 0.0), want, "attempt {attempt}");
        }
    }

    #[test]
    fn jitter_only_shortens_and_stays_in_band() {
        let backoff = Backoff::default();
        for attempt in 1..10 {
            let full = backoff.delay(attempt, 0.0);
            for random in [0.0, 0.25, 0.5, 0.999, 1.0, 7.0, -3.0] {
                let d = backoff.delay(attempt, random);
                assert!(
                    d <= full,
                    "attempt {attempt} random {random}: {d:?} > {full:?}"
                );
                assert!(
                    d >= full.mul_f64(0.8),
                    "attempt {attempt} random {random}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn degenerate_settings_do_not_panic() {
        let backoff = Backoff {
            initial: Duration::MAX,
            max: Duration::from_secs(1),
            factor: 0,
            jitter: f64::NAN,
        };
        assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(1));
        let default = Backoff::default();
        assert_eq!(default.delay(1, f64::NAN), ms(500));
        assert_eq!(default.delay(1, f64::INFINITY), ms(400));
    }
}
