//! Why an outbox operation did not succeed, as the executor and the write-backs report it; and
//! the randomness their backoff jitter draws.

use crate::kustomer::KustomerError;

/// What became of an attempt that did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// It can never succeed as it is: a dead letter now.
    Permanent,
    /// Trying again later may help (a 429 storm, a file not fetched yet, the store).
    Retry,
    /// Kustomer failed (5xx, timeout, no connection): retried, and counted for the breaker.
    Outage,
    /// Kustomer refused the API key: opens the breaker; retried when it closes.
    KeyRefused,
    /// What an earlier operation of the lane makes (the customer, the conversation, the
    /// message) is missing: held behind that operation's dead letter, if there is one.
    NeedsEarlier,
}

/// Why an operation did not succeed, and what to do about it.
#[derive(Debug)]
pub struct OpFailure {
    pub kind: FailureKind,
    pub reason: String,
}

impl From<KustomerError> for OpFailure {
    fn from(error: KustomerError) -> Self {
        let kind = match &error {
            KustomerError::Unauthorized => FailureKind::KeyRefused,
            KustomerError::Upstream(_) | KustomerError::Timeout | KustomerError::Network(_) => {
                FailureKind::Outage
            }
            e if e.retryable() => FailureKind::Retry,
            _ => FailureKind::Permanent,
        };
        OpFailure {
            kind,
            reason: error.to_string(),
        }
    }
}

impl From<sqlx::Error> for OpFailure {
    fn from(error: sqlx::Error) -> Self {
        waiting(format!("database: {error}"))
    }
}

pub(crate) fn waiting(reason: impl Into<String>) -> OpFailure {
    OpFailure {
        kind: FailureKind::Retry,
        reason: reason.into(),
    }
}

pub(crate) fn permanent(reason: impl Into<String>) -> OpFailure {
    OpFailure {
        kind: FailureKind::Permanent,
        reason: reason.into(),
    }
}

pub(crate) fn needs_earlier(reason: impl Into<String>) -> OpFailure {
    OpFailure {
        kind: FailureKind::NeedsEarlier,
        reason: reason.into(),
    }
}

pub(crate) fn random_bits() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
