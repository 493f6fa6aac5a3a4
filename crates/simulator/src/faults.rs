//! Fault injection on the CCAI routes: latency on every request, the next N requests answered
//! with an error status (429 with `Retry-After`), or the next N connections dropped mid-answer.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Body,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Largest latency accepted, so a typo cannot hang a test run.
pub const MAX_LATENCY_MS: u64 = 30_000;

/// What `POST /_sim/faults` sets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Added to every CCAI request until reset.
    #[serde(default)]
    pub latency_ms: u64,
    /// The status the next `count` requests answer (400..=599).
    #[serde(default)]
    pub status: Option<u16>,
    /// How many requests answer `status` (1 when a status is given without a count).
    #[serde(default)]
    pub count: Option<u32>,
    /// How many requests after those get their connection dropped.
    #[serde(default)]
    pub drop: u32,
    /// Session events: every POST is sent twice (duplicates).
    #[serde(default)]
    pub repeat_events: bool,
    /// Session events: the events of each POST are sent newest first (out of order).
    #[serde(default)]
    pub reverse_events: bool,
}

/// The faults in force.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultState {
    pub latency_ms: u64,
    pub status: Option<u16>,
    /// Requests left to answer with `status`.
    pub status_left: u32,
    /// Connections left to drop.
    pub drop_left: u32,
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Answer(u16),
    Drop,
}

impl FaultState {
    pub fn from_spec(spec: &FaultSpec) -> Result<FaultState, String> {
        if spec.latency_ms > MAX_LATENCY_MS {
            return Err(format!("latency_ms must be at most {MAX_LATENCY_MS}"));
        }
        if let Some(status) = spec.status {
            if !(400..=599).contains(&status) {
                return Err("status must be an HTTP error status, 400 to 599".into());
            }
        }
        Ok(FaultState {
            latency_ms: spec.latency_ms,
            status: spec.status,
            status_left: spec.status.map_or(0, |_| spec.count.unwrap_or(1)),
            drop_left: spec.drop,
        })
    }

    /// Decides for the next request and counts it.
    pub fn take(&mut self) -> Verdict {
        if let (Some(status), true) = (self.status, self.status_left > 0) {
            self.status_left -= 1;
            return Verdict::Answer(status);
        }
        if self.drop_left > 0 {
            self.drop_left -= 1;
            return Verdict::Drop;
        }
        Verdict::Pass
    }
}

/// Shared fault state. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<Mutex<FaultState>>);

impl Faults {
    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set(&self, state: FaultState) {
        *self.state() = state;
    }

    pub fn snapshot(&self) -> FaultState {
        self.state().clone()
    }

    pub fn reset(&self) {
        self.set(FaultState::default());
    }

    /// Waits the latency, then says what to do with the request.
    pub async fn verdict(&self) -> Verdict {
        let (latency, verdict) = {
            let mut state = self.state();
            (state.latency_ms, state.take())
        };
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        verdict
    }
}

/// The answer for a faulted request.
pub fn respond(verdict: Verdict) -> Option<Response> {
    match verdict {
        Verdict::Pass => None,
        Verdict::Answer(status) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (code, Json(json!({"message": "Simulated fault"}))).into_response();
            if status == 429 {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Some(response)
        }
        // Headers go out, then the body fails: the server closes the connection mid-answer,
        // which a client sees as a broken connection.
        Verdict::Drop => {
            let broken = futures_util::stream::once(async {
                Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated dropped connection",
                ))
            });
            Some(
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(broken))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_then_drops_then_passes() {
        let spec = FaultSpec {
            latency_ms: 0,
            status: Some(503),
            count: Some(2),
            drop: 1,
            ..FaultSpec::default()
        };
        let mut state = FaultState::from_spec(&spec).unwrap();
        let verdicts: Vec<Verdict> = (0..5).map(|_| state.take()).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Answer(503),
                Verdict::Answer(503),
                Verdict::Drop,
                Verdict::Pass,
                Verdict::Pass
            ]
        );
    }

    #[test]
    fn a_status_without_a_count_is_one_request() {
        let spec = FaultSpec {
            status: Some(429),
            ..FaultSpec::default()
        };
        let mut state = FaultState::from_spec(&spec).unwrap();
        assert_eq!(state.take(), Verdict::Answer(429));
        assert_eq!(state.take(), Verdict::Pass);
    }

    #[test]
    fn bad_specs_are_refused() {
        for spec in [
            FaultSpec {
                status: Some(200),
                ..FaultSpec::default()
            },
            FaultSpec {
                status: Some(99),
                ..FaultSpec::default()
            },
            FaultSpec {
                latency_ms: MAX_LATENCY_MS + 1,
                ..FaultSpec::default()
            },
        ] {
            assert!(FaultState::from_spec(&spec).is_err(), "{spec:?}");
        }
    }
}
