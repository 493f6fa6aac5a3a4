//! The gateway's `GET /healthz` response, decoded by the widget.

use serde::{Deserialize, Serialize};

/// Whether the gateway can do its work right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every dependency answers.
    Ok,
    /// The gateway is up but a dependency (its database) is failing.
    Degraded,
}

/// Body of `GET /healthz`. Unknown fields are ignored so the gateway may add some.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    /// The gateway's version (its crate version).
    pub version: String,
    /// `"ok"`, or what is wrong with the database.
    pub database: String,
}

impl Health {
    pub fn is_ok(&self) -> bool {
        self.status == HealthStatus::Ok
    }
}

impl crate::json_fields::FromJson for Health {
    fn from_fields(
        f: crate::json_fields::Fields<'_>,
    ) -> Result<Self, crate::json_fields::FieldError> {
        use crate::json_fields::{one_of, string};
        Ok(Health {
            status: [HealthStatus::Ok, HealthStatus::Degraded]
                [f.req("status", one_of(&["ok", "degraded"]))?],
            version: f.req("version", string)?,
            database: f.req("database", string)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_ignores_unknown_fields() {
        let h: Health = serde_json::from_str(
            r#"{"status":"ok","version":"0.1.0","database":"ok","uptime_s":12}"#,
        )
        .unwrap();
        assert!(h.is_ok());
        let h: Health =
            serde_json::from_str(r#"{"status":"degraded","version":"0.1.0","database":"locked"}"#)
                .unwrap();
        assert!(!h.is_ok());
    }

    #[test]
    fn rejects_unknown_status_and_missing_fields() {
        for body in [
            r#"{"status":"fine","version":"0.1.0","database":"ok"}"#,
            r#"{"status":"ok","database":"ok"}"#,
            r#"[]"#,
            "",
        ] {
            assert!(serde_json::from_str::<Health>(body).is_err(), "{body}");
        }
    }
}
