//! The widget's link to the gateway as a state machine: what the connection line shows, and
//! when to probe next. The widget drives it with probe outcomes; it decides nothing by clock.

use std::time::Duration;

use crate::backoff::Backoff;

/// What the agent is told about the gateway.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionState {
    /// A probe is under way and none has succeeded since the last failure (or ever).
    Connecting { attempt: u32 },
    /// The last probe succeeded.
    Connected,
    /// The last probe failed; the next one starts after `retry_in`.
    Offline {
        attempt: u32,
        retry_in: Duration,
        reason: String,
    },
}

impl ConnectionState {
    /// A stable machine-readable name, for `data-state` attributes and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionState::Connecting { .. } => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Offline { .. } => "offline",
        }
    }
}

/// Drives [`ConnectionState`] from probe outcomes.
#[derive(Clone, Debug)]
pub struct Connection {
    state: ConnectionState,
    failures: u32,
    backoff: Backoff,
    /// How long to wait between probes while connected.
    pub healthy_interval: Duration,
}

impl Connection {
    pub fn new(backoff: Backoff, healthy_interval: Duration) -> Self {
        Connection {
            state: ConnectionState::Connecting { attempt: 1 },
            failures: 0,
            backoff,
            healthy_interval,
        }
    }

    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// A probe is starting. While connected the line stays "connected" (a routine probe is not
    /// news); after a failure it says "connecting" again.
    pub fn probe_started(&mut self) {
        if self.state != ConnectionState::Connected {
            self.state = ConnectionState::Connecting {
                attempt: self.failures + 1,
            };
        }
    }

    /// The probe succeeded; returns how long to wait before the next one.
    pub fn probe_succeeded(&mut self) -> Duration {
        self.failures = 0;
        self.state = ConnectionState::Connected;
        self.healthy_interval
    }

    /// The probe failed for `reason`; returns how long to wait before the next one.
    /// `random` is a uniform draw in `[0, 1)` for the backoff's jitter.
    pub fn probe_failed(&mut self, reason: impl Into<String>, random: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let retry_in = self.backoff.delay(self.failures, random);
        self.state = ConnectionState::Offline {
            attempt: self.failures,
            retry_in,
            reason: reason.into(),
        };
        retry_in
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        Connection::new(Backoff::default(), Duration::from_secs(5))
    }

    #[test]
    fn starts_connecting() {
        assert_eq!(connection().state().name(), "connecting");
    }

    #[test]
    fn success_connects_and_waits_the_healthy_interval() {
        let mut c = connection();
        c.probe_started();
        assert_eq!(c.probe_succeeded(), Duration::from_secs(5));
        assert_eq!(c.state(), &ConnectionState::Connected);
        c.probe_started();
        assert_eq!(
            c.state(),
            &ConnectionState::Connected,
            "routine probe is not news"
        );
    }

    #[test]
    fn failures_back_off_and_report_the_reason() {
        let mut c = connection();
        let waits: Vec<_> = (0..4)
            .map(|_| {
                c.probe_started();
                c.probe_failed("refused", 0.0)
            })
            .collect();
        assert_eq!(
            waits,
            [500, 1_000, 2_000, 4_000]
                .map(Duration::from_millis)
                .to_vec()
        );
        assert_eq!(
            c.state(),
            &ConnectionState::Offline {
                attempt: 4,
                retry_in: Duration::from_secs(4),
                reason: "refused".into()
            }
        );
        c.probe_started();
        assert_eq!(c.state(), &ConnectionState::Connecting { attempt: 5 });
    }

    #[test]
    fn a_connected_gateway_that_stops_goes_offline_then_recovers() {
        let mut c = connection();
        c.probe_started();
        c.probe_succeeded();
        c.probe_started();
        assert_eq!(c.probe_failed("timed out", 0.0), Duration::from_millis(500));
        assert_eq!(c.state().name(), "offline");
        c.probe_started();
        assert_eq!(c.state().name(), "connecting");
        c.probe_succeeded();
        c.probe_started();
        assert_eq!(
            c.probe_failed("refused", 0.0),
            Duration::from_millis(500),
            "backoff restarts after a success"
        );
    }
}
