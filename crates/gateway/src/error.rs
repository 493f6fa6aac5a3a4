//! Every error the gateway answers with, in one list: a stable code, the HTTP status it goes
//! out with, and a sentence a person can act on. The domain modules return [`Error`]; the HTTP
//! layer ([`crate::http`]) turns it into `{"error": {"code", "message"}}` (with `problems` when
//! there are several). This module depends on nothing else of the gateway: the store and the
//! upstream clients say how their own errors read here.

/// Declares [`Code`]: each code's name on the wire and its HTTP status.
macro_rules! codes {
    ($($variant:ident = $wire:literal, $status:literal;)*) => {
        /// A stable error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as the API writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $wire,)*
                }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> u16 {
                match self {
                    $(Code::$variant => $status,)*
                }
            }
        }
    };
}

codes! {
    // The request itself.
    BadRequest = "bad_request", 400;
    NotJson = "not_json", 415;
    MalformedJson = "malformed_json", 400;
    InvalidFields = "invalid_fields", 422;
    BodyTooLarge = "body_too_large", 413;
    NotFound = "not_found", 404;
    // Who is asking.
    Unauthenticated = "unauthenticated", 401;
    SessionExpired = "session_expired", 401;
    BadCredentials = "bad_credentials", 401;
    InvalidEmail = "invalid_email", 400;
    EmailMismatch = "email_mismatch", 403;
    UnknownAgent = "unknown_agent", 403;
    UnknownKustomerUser = "unknown_kustomer_user", 403;
    AdminsOnly = "admins_only", 403;
    TooManyAttempts = "too_many_attempts", 429;
    // Statuses.
    UnknownStatus = "unknown_status", 422;
    StatusNotSelectable = "status_not_selectable", 422;
    InvalidStatus = "invalid_status", 400;
    TooManyStatuses = "too_many_statuses", 400;
    Superseded = "superseded", 409;
    NoNextStatus = "no_next_status", 409;
    MappingStale = "mapping_stale", 409;
    InvalidSettings = "invalid_settings", 422;
    // Calls.
    InvalidNumber = "invalid_number", 400;
    InvalidDigits = "invalid_digits", 400;
    InvalidTarget = "invalid_target", 400;
    UnknownCall = "unknown_call", 404;
    UnknownControl = "unknown_control", 404;
    ControlNotOffered = "control_not_offered", 409;
    ControlRefused = "control_refused", 409;
    AgentNotAvailable = "agent_not_available", 409;
    // The CRM sync.
    UnknownDeadLetter = "unknown_dead_letter", 404;
    NoDeadLetters = "no_dead_letters", 404;
    // Webhooks.
    InvalidWebhook = "invalid_webhook", 400;
    WebhooksDisabled = "webhooks_disabled", 503;
    // Upstreams and the gateway itself.
    CcaiRejected = "ccai_rejected", 422;
    CcaiUnavailable = "ccai_unavailable", 502;
    KustomerUnavailable = "kustomer_unavailable", 502;
    StoreUnavailable = "store_unavailable", 503;
}

/// An error answered to a caller.
#[derive(Debug)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// Each problem, when there are several (a settings form).
    pub problems: Vec<String>,
    /// When the caller may try again (`Retry-After`), for refusals that end by themselves.
    pub retry_after: Option<std::time::Duration>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            problems: Vec::new(),
            retry_after: None,
        }
    }

    /// Several problems at once: the message joins them, and each is listed.
    pub fn with_problems(code: Code, message: impl Into<String>, problems: Vec<String>) -> Self {
        Error {
            code,
            message: message.into(),
            problems,
            retry_after: None,
        }
    }

    /// Too many attempts: try again after `wait`.
    pub fn too_many_attempts(wait: std::time::Duration) -> Self {
        // Whole seconds, rounded up: a client that waits that long is let in.
        let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        Error {
            retry_after: Some(std::time::Duration::from_secs(seconds)),
            ..Error::new(
                Code::TooManyAttempts,
                format!("Too many attempts; try again in {seconds} s."),
            )
        }
    }

    /// The session is unknown, expired or revoked.
    pub fn session_expired() -> Self {
        Error::new(
            Code::SessionExpired,
            "Your session has ended; sign in again.",
        )
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_written_once_and_is_an_error_status() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            assert!((400..600).contains(&code.status()), "{code:?}");
            assert!(code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let seconds =
            |ms| Error::too_many_attempts(std::time::Duration::from_millis(ms)).retry_after;
        assert_eq!(seconds(0), Some(std::time::Duration::from_secs(1)));
        assert_eq!(seconds(1), Some(std::time::Duration::from_secs(1)));
        assert_eq!(seconds(2000), Some(std::time::Duration::from_secs(2)));
        assert_eq!(seconds(2001), Some(std::time::Duration::from_secs(3)));
    }
}
