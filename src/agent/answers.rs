//! What the widget reads of the gateway's answers: only the fields it uses. The whole answer
//! types are [`adapter_core::agent_api`]'s (the gateway writes them, the settings page reads
//! them); the widget decoding them whole carried every field's decoder in every agent's bundle
//! (the status inheritance settings alone, with their mapping, rule and status lists, were
//! 6.6 kB of the widget's gzip). The rules are the same ([`adapter_core::json_fields`]): a field
//! read here that is missing or of the wrong type is refused with its name.

use adapter_core::json_fields::{
    any, boolean, list, object_with, string, FieldError, Fields, FromJson,
};
use serde_json::Value;

/// `GET /status-inheritance`: whether status inheritance is on (`settings.enabled`).
pub struct InheritanceOn(pub bool);

impl FromJson for InheritanceOn {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        let enabled = f.req(
            "settings",
            object_with("settings", |settings| settings.req("enabled", boolean)),
        )?;
        Ok(InheritanceOn(enabled))
    }
}

/// `GET /me`: the call controls the agent's CCAI role offers (`capabilities`).
pub struct Capabilities(pub Vec<String>);

impl FromJson for Capabilities {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(Capabilities(f.req("capabilities", list(string))?))
    }
}

/// `PUT /status` and `POST /calls`: what the agent must know of an accepted action, if
/// anything (`message`, e.g. "applies after the call").
pub struct Note(pub Option<String>);

impl FromJson for Note {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        Ok(Note(f.opt("message", string)?))
    }
}

/// `POST /kustomer-status`: what the gateway decided (`decision.action`: `set_now`, `set_next`
/// or `ignore`) and its value (the CCAI status id, or why it was ignored) as text.
pub struct Decided {
    pub action: String,
    pub value: String,
}

impl FromJson for Decided {
    fn from_fields(f: Fields<'_>) -> Result<Self, FieldError> {
        f.req(
            "decision",
            object_with("decision", |d| {
                let value = match d.opt("value", any)? {
                    Some(Value::String(text)) => text,
                    Some(other) => adapter_core::json_text::to_text(&other),
                    None => String::new(),
                };
                Ok(Decided {
                    action: d.req("action", string)?,
                    value,
                })
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    //! Each reader against what the gateway writes: the agent API's own types, serialised.
    use adapter_core::{
        agent_api::{
            CallPlaced, Decision, InheritanceSettings, InheritanceView, Inherited, Me, StatusSet,
        },
        json_fields::from_str,
    };

    use super::*;

    fn written<T: serde::Serialize>(answer: &T) -> String {
        serde_json::to_string(answer).unwrap()
    }

    #[test]
    fn inheritance_on_is_the_settings_enabled_flag() {
        for enabled in [true, false] {
            let view = InheritanceView {
                settings: InheritanceSettings {
                    enabled,
                    ..Default::default()
                },
                ..Default::default()
            };
            let InheritanceOn(on) = from_str(&written(&view)).unwrap();
            assert_eq!(on, enabled);
        }
        let refused = from_str::<InheritanceOn>(r#"{"settings":{"enabled":"yes"}}"#);
        assert_eq!(
            refused.err().as_deref(),
            Some("field `settings.enabled`: expected a boolean")
        );
        assert!(from_str::<InheritanceOn>(r#"{"admin":false}"#).is_err());
    }

    #[test]
    fn capabilities_are_read_from_me() {
        let me = Me {
            admin: false,
            agent_email: "ada@example.com".into(),
            capabilities: vec!["hold".into(), "mute".into()],
            ccai_agent_id: 101,
            expires_at_ms: 1,
            kustomer_user_id: "u1".into(),
        };
        let Capabilities(controls) = from_str(&written(&me)).unwrap();
        assert_eq!(controls, ["hold", "mute"]);
    }

    #[test]
    fn a_note_is_the_message_when_there_is_one() {
        let set = StatusSet {
            current: None,
            message: Some("applies after the call".into()),
            next: None,
        };
        let Note(note) = from_str(&written(&set)).unwrap();
        assert_eq!(note.as_deref(), Some("applies after the call"));
        let placed = CallPlaced {
            call_id: 7,
            message: None,
            needs_agent: false,
            status: None,
        };
        let Note(note) = from_str(&written(&placed)).unwrap();
        assert_eq!(note, None);
    }

    #[test]
    fn a_decision_reads_its_action_and_value_as_text() {
        let answer = |action: &str, value: Option<Value>| Inherited {
            current: None,
            decision: Decision {
                action: action.into(),
                value,
            },
            next: None,
        };
        let ignored: Decided = from_str(&written(&answer(
            "ignore",
            Some(Value::String("unmapped".into())),
        )))
        .unwrap();
        assert_eq!(
            (ignored.action.as_str(), ignored.value.as_str()),
            ("ignore", "unmapped")
        );
        let now: Decided = from_str(&written(&answer("set_now", Some(Value::from(3))))).unwrap();
        assert_eq!((now.action.as_str(), now.value.as_str()), ("set_now", "3"));
        let bare: Decided = from_str(&written(&answer("set_next", None))).unwrap();
        assert_eq!(bare.value, "");
        assert!(from_str::<Decided>(r#"{"decision":{}}"#).is_err());
    }
}
