//! The agent API's request and response bodies (`docs/agent-api.md`): the gateway's handlers
//! read and write these types, and the widget decodes and encodes the same ones, so neither can
//! drift from the other.
//!
//! Fields are declared in the order they are written, which is the JSON the gateway has always
//! answered (byte for byte: its handlers built objects whose keys came out sorted, so most
//! answers list their fields alphabetically). Change a type only together with
//! `docs/agent-api.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    agent_events::StatusView,
    crm::FieldMapping,
    json_fields::{
        any, boolean, int, list, object, one_of, string, FieldError, Fields, FromJson, Refusal,
    },
    json_text::{Object, ToJson},
    status_policy::PriorityRule,
};

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

/// The Kustomer user a sign-in is for. The gateway reads only the email: who the agent is in
/// Kustomer is asked of Kustomer, never taken from the id a browser sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInUser {
    #[serde(default)]
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

/// A refusal: `{"error": {"code", "message"}}`, with `problems` when there are several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The refusal's machine code and the gateway's sentence (English), and each problem when it
/// found several (e.g. invalid inheritance settings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// `GET /api/v1/me`: who is signed in, until when, the call controls on offer, and whether the
/// agent is an admin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Me {
    pub admin: bool,
    pub agent_email: String,
    pub capabilities: Vec<String>,
    pub ccai_agent_id: i64,
    pub expires_at_ms: i64,
    pub kustomer_user_id: String,
}

/// A status the agent may see in the menu (`color` is the tenant's, `null` when it has none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusOption {
    #[serde(default)]
    pub color: Option<String>,
    pub id: i64,
    pub name: String,
    pub selectable: bool,
}

/// A CCAI status a Kustomer status can be mapped to (the inheritance settings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CcaiStatus {
    pub id: i64,
    pub name: String,
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
    /// When the agent picked it (Unix ms, the browser's clock); now when missing. Ranks it
    /// against Kustomer changes when status inheritance is on.
    #[serde(default)]
    pub at_ms: Option<i64>,
}

/// `PUT /api/v1/status` (200, or 202 with `message` when it waits as the next status) and
/// `DELETE /api/v1/status/next`: the status now and the next one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSet {
    pub current: Option<StatusView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub next: Option<StatusView>,
}

/// `POST /api/v1/calls` (click-to-call).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceCallRequest {
    /// E.164, as the dial pad showed it.
    pub number: String,
    /// The Kustomer conversation the call belongs to.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// ISO 639-1.
    #[serde(default)]
    pub lang: Option<String>,
}

/// `POST /api/v1/calls`: 201, or 202 with `message` when the agent must finish the call in the
/// adapter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPlaced {
    pub call_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub needs_agent: bool,
    pub status: Option<String>,
}

/// `POST /api/v1/calls/{id}/{action}` (202): the control asked of the upstream, and its answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlDone {
    pub call_id: i64,
    pub control: String,
    #[serde(default)]
    pub result: serde_json::Value,
}

/// A Kustomer routing status, as the admin's settings list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KustomerStatus {
    pub id: String,
    pub name: String,
}

/// Status inheritance as saved by an admin (`PUT /api/v1/status-inheritance`), and as the
/// gateway answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritanceSettings {
    /// Write CCAI status changes back to Kustomer (routing work sessions).
    #[serde(default)]
    pub bidirectional: bool,
    pub enabled: bool,
    /// The Kustomer statuses the mapping was made against (read from Kustomer by the admin's
    /// adapter).
    #[serde(default)]
    pub kustomer_statuses: Vec<KustomerStatus>,
    /// Kustomer status id → CCAI status id.
    #[serde(default)]
    pub mapping: BTreeMap<String, i64>,
    /// `latest_wins` (when missing) or `kustomer_overrides_next`.
    #[serde(default)]
    pub rule: PriorityRule,
}

/// `GET /api/v1/status-inheritance`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritanceView {
    pub admin: bool,
    pub ccai_statuses: Vec<CcaiStatus>,
    /// Whether the Kustomer status at sign-in is inherited (never, today).
    #[serde(default)]
    pub login_inherited: bool,
    pub settings: InheritanceSettings,
}

/// `PUT /api/v1/status-inheritance`: the settings as saved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritanceSaved {
    pub settings: InheritanceSettings,
}

/// One change of the inheritance settings (`GET /api/v1/status-inheritance/audit`): when, by
/// whom, the settings before (`null` for the first) and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub actor: String,
    pub at_ms: i64,
    pub new: serde_json::Value,
    pub old: Option<serde_json::Value>,
}

/// `GET /api/v1/status-inheritance/audit` (admins), newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    pub entries: Vec<AuditEntry>,
}

/// `POST /api/v1/kustomer-status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KustomerStatusRequest {
    pub status_id: String,
    /// When it changed (Unix ms); now when missing.
    #[serde(default)]
    pub at_ms: Option<i64>,
}

/// What the gateway did with a Kustomer status change, and the agent's status after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inherited {
    #[serde(default)]
    pub current: Option<StatusView>,
    pub decision: Decision,
    #[serde(default)]
    pub next: Option<StatusView>,
}

/// `{"action": "set_now"|"set_next", "value": <CCAI id>}` or `{"action": "ignore", "value":
/// "<reason>"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: String,
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

impl From<crate::status_policy::Decision> for Decision {
    fn from(decision: crate::status_policy::Decision) -> Self {
        use crate::status_policy::Decision::{Ignore, SetNext, SetNow};
        let (action, value) = match decision {
            Ignore(why) => ("ignore", serde_json::Value::from(why.as_str())),
            SetNow(id) => ("set_now", serde_json::Value::from(id)),
            SetNext(id) => ("set_next", serde_json::Value::from(id)),
        };
        Decision {
            action: action.to_owned(),
            value: Some(value),
        }
    }
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

/// `POST /api/v1/crm/custom-fields` (admins, 201): when, and the fields made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomFields {
    pub account_fields: Vec<String>,
    pub provisioned_at_ms: i64,
    pub record_fields: Vec<String>,
}

/// `PUT /api/v1/crm/settings`: either field may be left out; no other is accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    pub attempts: i64,
    pub key: String,
    /// The queue it held up (its session's, or the agent's status write-backs').
    #[serde(default)]
    pub lane: String,
    #[serde(default)]
    pub operation: serde_json::Value,
    #[serde(default)]
    pub reason: Option<String>,
    pub rule: String,
    pub seq: i64,
    pub session_id: i64,
}

/// `GET /api/v1/crm/dead-letters` (admins).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeadLetters {
    pub dead_letters: Vec<DeadLetter>,
}

/// A retry of dead letters (admins): how many operations went back in the queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub released: u64,
}

// How the widget writes its requests (by hand: serde_json's serialiser is a large share of
// the wasm); the tests hold each to its derived serialiser.

impl ToJson for Session {
    fn to_json(&self) -> String {
        Object::new()
            .text("token", &self.token)
            .text("agent_email", &self.agent_email)
            .int("ccai_agent_id", self.ccai_agent_id)
            .text("kustomer_user_id", &self.kustomer_user_id)
            .int("expires_at_ms", self.expires_at_ms)
            .finish()
    }
}

impl ToJson for SignInRequest {
    fn to_json(&self) -> String {
        let user = Object::new()
            .text("id", &self.kustomer_user.id)
            .text("email", &self.kustomer_user.email)
            .finish();
        Object::new()
            .text("email", &self.email)
            .opt_text("password", self.password.as_deref())
            .raw("kustomer_user", &user)
            .finish()
    }
}

impl ToJson for KustomerStatusRequest {
    fn to_json(&self) -> String {
        Object::new()
            .text("status_id", &self.status_id)
            .opt_int("at_ms", self.at_ms)
            .finish()
    }
}

impl ToJson for SetStatusRequest {
    fn to_json(&self) -> String {
        Object::new()
            .int("status_id", self.status_id)
            .opt_int("at_ms", self.at_ms)
            .finish()
    }
}

impl ToJson for PlaceCallRequest {
    fn to_json(&self) -> String {
        Object::new()
            .text("number", &self.number)
            .opt_text("conversation_id", self.conversation_id.as_deref())
            .opt_text("lang", self.lang.as_deref())
            .finish()
    }
}

// How the widget reads the answers (one parsed value, field by field: far less code in the
// wasm than each type's derived decoder); the tests hold each to its derived decoder.

impl FromJson for Session {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(Session {
            token: f.req("token", string)?,
            agent_email: f.req("agent_email", string)?,
            ccai_agent_id: f.req("ccai_agent_id", int)?,
            kustomer_user_id: f.req("kustomer_user_id", string)?,
            expires_at_ms: f.req("expires_at_ms", int)?,
        })
    }
}

impl FromJson for ErrorBody {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(ErrorBody {
            error: f.req("error", object)?,
        })
    }
}

impl FromJson for ErrorDetail {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(ErrorDetail {
            code: f.req("code", string)?,
            message: f.req("message", string)?,
            problems: f.or_default("problems", list(string))?,
        })
    }
}

impl FromJson for Me {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(Me {
            admin: f.or_default("admin", boolean)?,
            agent_email: f.or_default("agent_email", string)?,
            capabilities: f.or_default("capabilities", list(string))?,
            ccai_agent_id: f.or_default("ccai_agent_id", int)?,
            expires_at_ms: f.or_default("expires_at_ms", int)?,
            kustomer_user_id: f.or_default("kustomer_user_id", string)?,
        })
    }
}

impl FromJson for StatusOption {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(StatusOption {
            color: f.opt("color", string)?,
            id: f.req("id", int)?,
            name: f.req("name", string)?,
            selectable: f.req("selectable", boolean)?,
        })
    }
}

impl FromJson for CcaiStatus {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(CcaiStatus {
            id: f.req("id", int)?,
            name: f.req("name", string)?,
            selectable: f.req("selectable", boolean)?,
        })
    }
}

impl FromJson for Statuses {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(Statuses {
            statuses: f.req("statuses", list(object))?,
        })
    }
}

impl FromJson for StatusSet {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(StatusSet {
            current: f.opt("current", object)?,
            message: f.opt("message", string)?,
            next: f.opt("next", object)?,
        })
    }
}

impl FromJson for CallPlaced {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(CallPlaced {
            call_id: f.req("call_id", int)?,
            message: f.opt("message", string)?,
            needs_agent: f.req("needs_agent", boolean)?,
            status: f.opt("status", string)?,
        })
    }
}

impl FromJson for KustomerStatus {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(KustomerStatus {
            id: f.req("id", string)?,
            name: f.req("name", string)?,
        })
    }
}

impl FromJson for InheritanceSettings {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        const RULES: [PriorityRule; 2] = [
            PriorityRule::LatestWins,
            PriorityRule::KustomerOverridesNext,
        ];
        Ok(InheritanceSettings {
            bidirectional: f.or_default("bidirectional", boolean)?,
            enabled: f.req("enabled", boolean)?,
            kustomer_statuses: f.or_default("kustomer_statuses", list(object))?,
            mapping: f.or_default("mapping", |value, key| {
                let map = Fields::of(value, key)?;
                map.entries()
                    .map(|(name, id)| Ok((name.clone(), int(id, name)?)))
                    .collect::<Result<BTreeMap<_, _>, Refusal>>()
                    .map_err(|refusal| match refusal {
                        Refusal::Expected(kind) => {
                            Refusal::Inner(format!("field `{key}`: values expected {kind}"))
                        }
                        inner => inner,
                    })
            })?,
            rule: f.or_default("rule", |value, key| {
                one_of(&["latest_wins", "kustomer_overrides_next"])(value, key).map(|i| RULES[i])
            })?,
        })
    }
}

impl FromJson for InheritanceView {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(InheritanceView {
            admin: f.req("admin", boolean)?,
            ccai_statuses: f.req("ccai_statuses", list(object))?,
            login_inherited: f.or_default("login_inherited", boolean)?,
            settings: f.req("settings", object)?,
        })
    }
}

impl FromJson for Inherited {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(Inherited {
            current: f.opt("current", object)?,
            decision: f.req("decision", object)?,
            next: f.opt("next", object)?,
        })
    }
}

impl FromJson for Decision {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(Decision {
            action: f.req("action", string)?,
            value: f.opt("value", any)?,
        })
    }
}

impl FromJson for FieldMapping {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(FieldMapping {
            sdk_key: f.req("sdk_key", string)?,
            field: f.req("field", string)?,
        })
    }
}

impl FromJson for CrmSettings {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(CrmSettings {
            create_abandoned: f.req("create_abandoned", boolean)?,
            mapping: f.req("mapping", list(object))?,
            custom_fields_at_ms: f.opt("custom_fields_at_ms", int)?,
        })
    }
}

impl FromJson for Outbox {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(Outbox {
            enabled: f.req("enabled", boolean)?,
            inbox: f.req("inbox", int)?,
            pending: f.req("pending", int)?,
            done: f.req("done", int)?,
            dead: f.req("dead", int)?,
        })
    }
}

impl FromJson for DeadLetter {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(DeadLetter {
            attempts: f.req("attempts", int)?,
            key: f.req("key", string)?,
            lane: f.or_default("lane", string)?,
            operation: f.or_default("operation", any)?,
            reason: f.opt("reason", string)?,
            rule: f.req("rule", string)?,
            seq: f.req("seq", int)?,
            session_id: f.req("session_id", int)?,
        })
    }
}

impl FromJson for DeadLetters {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(DeadLetters {
            dead_letters: f.req("dead_letters", list(object))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widgets_requests_are_written_as_the_derived_serialisers_write_them() {
        use crate::json_text::assert_writes_as_serde;
        assert_writes_as_serde(&[Session {
            token: "t\"k".into(),
            agent_email: "ada@example.com".into(),
            ccai_agent_id: -101,
            kustomer_user_id: "u1".into(),
            expires_at_ms: i64::MAX,
        }]);
        let user = |id: &str| SignInUser {
            id: id.into(),
            email: "ada@example.com".into(),
        };
        assert_writes_as_serde(&[
            SignInRequest {
                email: "ada@example.com".into(),
                password: Some("p\\w\n".into()),
                kustomer_user: user("u1"),
            },
            SignInRequest {
                email: String::new(),
                password: None,
                kustomer_user: user(""),
            },
        ]);
        assert_writes_as_serde(&[
            KustomerStatusRequest {
                status_id: "st-1".into(),
                at_ms: Some(1_795_000_000_000),
            },
            KustomerStatusRequest {
                status_id: "é".into(),
                at_ms: None,
            },
        ]);
        assert_writes_as_serde(&[
            SetStatusRequest {
                status_id: 3,
                at_ms: Some(-1),
            },
            SetStatusRequest {
                status_id: i64::MIN,
                at_ms: None,
            },
        ]);
        assert_writes_as_serde(&[
            PlaceCallRequest {
                number: "+33612345678".into(),
                conversation_id: Some("k1".into()),
                lang: Some("fr".into()),
            },
            PlaceCallRequest {
                number: "+1\u{1}".into(),
                conversation_id: None,
                lang: None,
            },
        ]);
    }

    #[test]
    fn the_widgets_readers_read_as_the_derived_decoders() {
        use crate::json_fields::assert_reads_as_serde;
        let view = |id, name: &str| StatusView {
            id,
            name: name.into(),
        };
        assert_reads_as_serde(
            &[Session {
                token: "t".into(),
                agent_email: "ada@example.com".into(),
                ccai_agent_id: 101,
                kustomer_user_id: "u1".into(),
                expires_at_ms: 1_795_000_000_000,
            }],
            3_000,
        );
        assert_reads_as_serde(
            &[ErrorBody {
                error: ErrorDetail {
                    code: "bad".into(),
                    message: "No.".into(),
                    problems: vec!["one".into()],
                },
            }],
            2_000,
        );
        assert_reads_as_serde(
            &[
                Me {
                    admin: true,
                    agent_email: "ada@example.com".into(),
                    capabilities: vec!["answer".into()],
                    ccai_agent_id: 101,
                    expires_at_ms: 5,
                    kustomer_user_id: "u1".into(),
                },
                Me::default(),
            ],
            3_000,
        );
        assert_reads_as_serde(
            &[Statuses {
                statuses: vec![
                    StatusOption {
                        color: Some("green".into()),
                        id: 0,
                        name: "Available".into(),
                        selectable: true,
                    },
                    StatusOption {
                        color: None,
                        id: -7,
                        name: "In-call".into(),
                        selectable: false,
                    },
                ],
            }],
            3_000,
        );
        assert_reads_as_serde(
            &[
                StatusSet {
                    current: Some(view(-7, "In-call")),
                    message: Some("After the call.".into()),
                    next: Some(view(-2, "Break")),
                },
                StatusSet {
                    current: None,
                    message: None,
                    next: None,
                },
            ],
            3_000,
        );
        assert_reads_as_serde(
            &[CallPlaced {
                call_id: 9,
                message: Some("Pick a number.".into()),
                needs_agent: true,
                status: Some("queued".into()),
            }],
            2_000,
        );
        assert_reads_as_serde(
            &[InheritanceView {
                admin: false,
                ccai_statuses: vec![CcaiStatus {
                    id: -4,
                    name: "Meal".into(),
                    selectable: true,
                }],
                login_inherited: false,
                settings: InheritanceSettings {
                    bidirectional: true,
                    enabled: true,
                    kustomer_statuses: vec![KustomerStatus {
                        id: "rs-lunch".into(),
                        name: "Lunch".into(),
                    }],
                    mapping: [("rs-lunch".to_owned(), -4), ("rs-busy".to_owned(), 1)].into(),
                    rule: PriorityRule::KustomerOverridesNext,
                },
            }],
            5_000,
        );
        assert_reads_as_serde(
            &[
                Inherited {
                    current: Some(view(-4, "Meal")),
                    decision: Decision {
                        action: "set_now".into(),
                        value: Some(serde_json::json!(-4)),
                    },
                    next: None,
                },
                Inherited {
                    current: None,
                    decision: Decision {
                        action: "ignore".into(),
                        value: None,
                    },
                    next: Some(view(-2, "Break")),
                },
            ],
            3_000,
        );
        assert_reads_as_serde(
            &[CrmSettings {
                create_abandoned: false,
                mapping: vec![FieldMapping {
                    sdk_key: "order".into(),
                    field: "orderIdStr".into(),
                }],
                custom_fields_at_ms: Some(5),
            }],
            3_000,
        );
        assert_reads_as_serde(
            &[Outbox {
                enabled: true,
                inbox: 1,
                pending: 2,
                done: 3,
                dead: 4,
            }],
            2_000,
        );
        assert_reads_as_serde(
            &[DeadLetters {
                dead_letters: vec![DeadLetter {
                    attempts: 10,
                    key: "k".into(),
                    lane: "session-9".into(),
                    operation: serde_json::json!({"add_note": {"body": "b"}}),
                    reason: Some("gone".into()),
                    rule: "call_ended".into(),
                    seq: 3,
                    session_id: 9,
                }],
            }],
            3_000,
        );
        assert_reads_as_serde(
            &[crate::health::Health {
                status: crate::health::HealthStatus::Degraded,
                version: "0.1.0".into(),
                database: "unavailable".into(),
            }],
            2_000,
        );
    }

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

    fn text<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }

    /// The gateway's answers, byte for byte as its handlers wrote them before they used these
    /// types (objects built with `json!`, whose keys come out sorted).
    #[test]
    fn the_answers_are_written_as_the_gateway_always_wrote_them() {
        let status = |id: i64, name: &str| StatusView {
            id,
            name: name.into(),
        };
        let me = Me {
            admin: true,
            agent_email: "ada@example.com".into(),
            capabilities: vec!["hold".into()],
            ccai_agent_id: 101,
            expires_at_ms: 5,
            kustomer_user_id: "u1".into(),
        };
        assert_eq!(
            text(&me),
            r#"{"admin":true,"agent_email":"ada@example.com","capabilities":["hold"],"ccai_agent_id":101,"expires_at_ms":5,"kustomer_user_id":"u1"}"#
        );
        let statuses = Statuses {
            statuses: vec![StatusOption {
                color: None,
                id: -7,
                name: "In-call".into(),
                selectable: false,
            }],
        };
        assert_eq!(
            text(&statuses),
            r#"{"statuses":[{"color":null,"id":-7,"name":"In-call","selectable":false}]}"#
        );
        let waits = StatusSet {
            current: Some(status(-7, "In-call")),
            message: Some("After the call.".into()),
            next: Some(status(-2, "Break")),
        };
        assert_eq!(
            text(&waits),
            r#"{"current":{"id":-7,"name":"In-call"},"message":"After the call.","next":{"id":-2,"name":"Break"}}"#
        );
        let cancelled = StatusSet {
            current: None,
            message: None,
            next: None,
        };
        assert_eq!(text(&cancelled), r#"{"current":null,"next":null}"#);
        let view = InheritanceView {
            admin: false,
            ccai_statuses: vec![CcaiStatus {
                id: 0,
                name: "Available".into(),
                selectable: true,
            }],
            login_inherited: false,
            settings: InheritanceSettings {
                enabled: true,
                ..InheritanceSettings::default()
            },
        };
        assert_eq!(
            text(&view),
            r#"{"admin":false,"ccai_statuses":[{"id":0,"name":"Available","selectable":true}],"login_inherited":false,"settings":{"bidirectional":false,"enabled":true,"kustomer_statuses":[],"mapping":{},"rule":"latest_wins"}}"#
        );
        let placed = CallPlaced {
            call_id: 7,
            message: None,
            needs_agent: false,
            status: Some("dialing".into()),
        };
        assert_eq!(
            text(&placed),
            r#"{"call_id":7,"needs_agent":false,"status":"dialing"}"#
        );
        let done = ControlDone {
            call_id: 7,
            control: "hold".into(),
            result: serde_json::Value::Null,
        };
        assert_eq!(
            text(&done),
            r#"{"call_id":7,"control":"hold","result":null}"#
        );
        let inherited = Inherited {
            current: None,
            decision: crate::status_policy::Decision::SetNext(-2).into(),
            next: Some(status(-2, "Break")),
        };
        assert_eq!(
            text(&inherited),
            r#"{"current":null,"decision":{"action":"set_next","value":-2},"next":{"id":-2,"name":"Break"}}"#
        );
        let dead = DeadLetter {
            attempts: 10,
            key: "k".into(),
            lane: "session:9".into(),
            operation: "create_note".into(),
            reason: None,
            rule: "call_ended".into(),
            seq: 3,
            session_id: 9,
        };
        assert_eq!(
            text(&dead),
            r#"{"attempts":10,"key":"k","lane":"session:9","operation":"create_note","reason":null,"rule":"call_ended","seq":3,"session_id":9}"#
        );
        let refusal = ErrorBody {
            error: ErrorDetail {
                code: "invalid_settings".into(),
                message: "Two problems.".into(),
                problems: vec!["one".into(), "two".into()],
            },
        };
        assert_eq!(
            text(&refusal),
            r#"{"error":{"code":"invalid_settings","message":"Two problems.","problems":["one","two"]}}"#
        );
        let plain = ErrorBody {
            error: ErrorDetail {
                problems: Vec::new(),
                ..refusal.error
            },
        };
        assert_eq!(
            text(&plain),
            r#"{"error":{"code":"invalid_settings","message":"Two problems."}}"#
        );
    }

    #[test]
    fn a_policy_decision_is_written_as_the_policy_writes_it() {
        use crate::status_policy::{Decision as Policy, Ignored};
        let every = [
            Policy::SetNow(0),
            Policy::SetNext(-4),
            Policy::Ignore(Ignored::Disabled),
            Policy::Ignore(Ignored::Unmapped),
            Policy::Ignore(Ignored::Offline),
            Policy::Ignore(Ignored::OlderThanAgentsChange),
            Policy::Ignore(Ignored::AgentsNextIsLater),
            Policy::Ignore(Ignored::AlreadyThere),
        ];
        for policy in every {
            assert_eq!(text(&Decision::from(policy)), text(&policy));
        }
        for rule in PriorityRule::ALL {
            assert_eq!(text(&rule), format!("\"{}\"", rule.as_str()));
        }
    }
}
