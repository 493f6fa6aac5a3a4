//! The agent API's request and response bodies (`docs/agent-api.md`), as the gateway writes and
//! reads them today: the widget decodes and encodes them; the gateway is to adopt them.
//!
//! Each type matches the gateway's current JSON exactly (names, optional fields, defaults):
//! change one only together with the gateway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crm::FieldMapping;

/// A session of the agent API, as the gateway issued it (`POST /api/v1/sessions`,
/// `POST /api/v1/sessions/refresh`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub agent_email: String,
    pub ccai_agent_id: i64,
    pub kustomer_user_id: String,
    pub expires_at_ms: i64,
}

/// The Kustomer user a sign-in is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInUser {
    pub id: String,
    pub email: String,
}

/// `POST /api/v1/sessions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInRequest {
    pub email: String,
    /// `null` when empty (the demo gateway accepts the Kustomer user without one).
    pub password: Option<String>,
    pub kustomer_user: SignInUser,
}

/// A refusal: `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The refusal's machine code and the gateway's sentence (English).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// An answer that may carry a note for the agent (e.g. a status kept as the next one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    #[serde(default)]
    pub message: Option<String>,
}

/// `GET /api/v1/me` (the fields the widget reads).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// A status the agent may see in the menu.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusOption {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub color: String,
    pub selectable: bool,
}

/// `GET /api/v1/statuses`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statuses {
    pub statuses: Vec<StatusOption>,
}

/// `PUT /api/v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetStatusRequest {
    pub status_id: i64,
    pub at_ms: i64,
}

/// `POST /api/v1/calls` (click-to-call).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceCallRequest {
    pub number: String,
    pub conversation_id: Option<String>,
    pub lang: String,
}

/// A Kustomer routing status, as the admin's settings list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KustomerStatus {
    pub id: String,
    pub name: String,
}

/// Status inheritance as saved by an admin (`PUT /api/v1/status-inheritance`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritanceSettings {
    pub enabled: bool,
    /// `latest_wins` or `kustomer_overrides_next`.
    pub rule: String,
    #[serde(default)]
    pub bidirectional: bool,
    /// Kustomer status id → CCAI status id.
    #[serde(default)]
    pub mapping: BTreeMap<String, i64>,
    #[serde(default)]
    pub kustomer_statuses: Vec<KustomerStatus>,
}

/// `GET /api/v1/status-inheritance`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritanceView {
    pub settings: InheritanceSettings,
    pub ccai_statuses: Vec<StatusOption>,
    pub admin: bool,
}

/// `POST /api/v1/kustomer-status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KustomerStatusRequest {
    pub status_id: String,
    pub at_ms: Option<i64>,
}

/// What the gateway did with a Kustomer status change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inherited {
    pub decision: Decision,
}

/// `{"action": "set_now"|"set_next", "value": <CCAI id>}` or `{"action": "ignore", "value":
/// "<reason>"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: String,
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

/// `GET|PUT /api/v1/crm/settings` (admins): the CRM sync's organisation settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmSettings {
    /// Create a conversation for an abandoned call.
    pub create_abandoned: bool,
    /// SDK custom data keys to conversation fields.
    pub mapping: Vec<FieldMapping>,
    /// When the custom fields were provisioned.
    #[serde(default)]
    pub custom_fields_at_ms: Option<i64>,
}

impl Default for CrmSettings {
    fn default() -> Self {
        CrmSettings {
            create_abandoned: true,
            mapping: Vec::new(),
            custom_fields_at_ms: None,
        }
    }
}

/// `PUT /api/v1/crm/settings`: either field may be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmSettingsUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_abandoned: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Vec<FieldMapping>>,
}

/// `GET /api/v1/crm/outbox` (admins): the sync's queues.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    pub enabled: bool,
    pub inbox: i64,
    pub pending: i64,
    pub done: i64,
    pub dead: i64,
}

/// One operation the CRM sync gave up on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub seq: i64,
    pub key: String,
    pub session_id: i64,
    pub rule: String,
    #[serde(default)]
    pub operation: serde_json::Value,
    pub attempts: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /api/v1/crm/dead-letters` (admins).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeadLetters {
    pub dead_letters: Vec<DeadLetter>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_shapes_read_back() {
        let view: InheritanceView = serde_json::from_str(
            r#"{"settings": {"enabled": true, "rule": "latest_wins", "bidirectional": false,
                "mapping": {"rs-lunch": -4}, "kustomer_statuses": [{"id": "rs-lunch", "name": "Lunch"}]},
                "ccai_statuses": [{"id": -4, "name": "Meal", "selectable": true}], "admin": true,
                "login_inherited": false}"#,
        )
        .expect("inheritance view");
        assert_eq!(view.settings.mapping.get("rs-lunch"), Some(&-4));
        let dead: DeadLetters = serde_json::from_str(
            r#"{"dead_letters": [{"seq": 3, "key": "k", "session_id": 9, "rule": "call_ended",
                "operation": "create_note", "attempts": 10, "reason": null}]}"#,
        )
        .expect("dead letters");
        assert_eq!(dead.dead_letters[0].seq, 3);
        let outbox: Outbox = serde_json::from_str(
            r#"{"enabled": true, "inbox": 0, "pending": 1, "done": 2, "dead": 3, "waiting": [], "kustomer_requests": 7}"#,
        )
        .expect("outbox");
        assert_eq!(outbox.dead, 3);
        let update = CrmSettingsUpdate {
            create_abandoned: Some(false),
            mapping: None,
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap_or_default(),
            r#"{"create_abandoned":false}"#
        );
        let failure: ErrorBody =
            serde_json::from_str(r#"{"error": {"code": "not_admin", "message": "No."}}"#)
                .expect("error body");
        assert_eq!(failure.error.code, "not_admin");
    }
}
