//! One named table test per rule of the seeds. Events are built as the platform sends them
//! (JSON) and decoded, so the tests go through the same path as the gateway.

use super::*;
use crate::session_webhook::decode;
use serde_json::json;

const AGENT: &str = "grace.hopper@example.com";

/// A session event: `event` like `call.connected`, `session` merged over a default inbound
/// IVR call 1001 from +14155552671, `extra` merged at the top level.
fn event(event: &str, session: Value, extra: Value) -> SessionWebhook {
    let (kind, _) = event.split_once('.').unwrap_or(("call", ""));
    let mut body = json!({
        "event_id": format!("e-{event}"), "event_type": event,
        "occurred_at": "2026-11-21T16:00:00.000Z",
        "session": {"type": kind, "id": 1001, "status": "connected", "direction": "inbound",
            "end_user": {"identifier": "+14155552671"},
            "selected_menu": {"id": 7, "name": "Billing"}, "lang": "en"},
        "agent": {"id": 102, "email": AGENT},
    });
    if let (Some(target), Value::Object(session)) = (body["session"].as_object_mut(), session) {
        target.extend(session);
    }
    if let (Some(target), Value::Object(extra)) = (body.as_object_mut(), extra) {
        target.extend(extra);
    }
    match decode(body.to_string().as_bytes()) {
        Ok(webhook) => webhook,
        Err(e) => panic!("{event}: {e}"),
    }
}

fn rules(planned: &[Planned]) -> Vec<(Rule, &str)> {
    planned
        .iter()
        .map(|p| (p.rule, p.key.split_once('/').map_or("", |(_, k)| k)))
        .collect()
}

fn conversation(planned: &[Planned]) -> Option<&ConversationSpec> {
    planned.iter().find_map(|p| match &p.op {
        Operation::ResolveConversation(spec) => Some(spec),
        _ => None,
    })
}

fn customer(planned: &[Planned]) -> Option<(Rule, &CustomerSpec)> {
    planned.iter().find_map(|p| match &p.op {
        Operation::EnsureCustomer(spec) => Some((p.rule, spec)),
        _ => None,
    })
}

fn summary(id: &str, status: &str, at: i64, menu: &str, channel: &str) -> ConversationSummary {
    ConversationSummary {
        id: id.into(),
        status: status.into(),
        created_at_ms: at,
        external_id: None,
        menu: Some(menu.into()),
        channel: Some(channel.into()),
        assigned_users: Vec::new(),
    }
}

fn settings() -> Settings {
    Settings::default()
}

// ---- Ticket creation -------------------------------------------------------------------

#[test]
fn mobile_sdk_call_or_chat_arrives() {
    for (event_type, session_type) in [
        ("call.offered", "Mobile call"),
        ("chat.offered", "Mobile chat"),
    ] {
        let w = event(
            event_type,
            json!({"status": "ringing", "origin": "mobile_sdk",
                "end_user": {"identifier": "app-user-9", "name": "Jean"}}),
            json!({}),
        );
        let planned = plan(&w, &settings());
        let spec =
            conversation(&planned).unwrap_or_else(|| panic!("{event_type}: no conversation"));
        assert_eq!(
            spec.policy,
            ConversationPolicy::AppendToOpenMatching,
            "{event_type}"
        );
        assert!(
            spec.name.starts_with(session_type),
            "{event_type}: {}",
            spec.name
        );
        assert_eq!(
            planned
                .iter()
                .find(|p| p.key == "1001/conversation")
                .map(|p| p.rule),
            Some(Rule::MobileSdkCallOrChatArrives)
        );
    }
    // The same offer of an IVR call creates nothing: it is written when answered.
    let ivr = event("call.offered", json!({"status": "ringing"}), json!({}));
    assert_eq!(plan(&ivr, &settings()), vec![]);
}

#[test]
fn ivr_call_answered() {
    let w = event("call.connected", json!({}), json!({}));
    let planned = plan(&w, &settings());
    assert_eq!(
        rules(&planned),
        vec![
            (Rule::NewPhoneNumberCreatesCustomer, "customer"),
            (Rule::IvrCallAnswered, "conversation"),
            (Rule::PhoneNumberNote, "phone-note"),
            (
                Rule::ConversationAssignedToAnsweringAgent,
                "assign/grace.hopper@example.com"
            ),
            (Rule::NewCustomerAssignedToAgent, "customer-assignment"),
        ],
        "the call's message is written when the call is over"
    );
    // Over at its end, or at the latest when its wrap-up ends (a call transferred away).
    for over in ["call.ended", "call.wrap_up_ended"] {
        let w = event(
            over,
            json!({"status": "finished", "connected_at": "2026-11-21T15:58:00.000Z"}),
            json!({}),
        );
        assert!(
            plan(&w, &settings())
                .iter()
                .any(|p| p.key == "1001/message" && p.carried_by.is_none()),
            "{over}"
        );
    }
    let never_answered = event(
        "call.wrap_up_ended",
        json!({"status": "finished"}),
        json!({}),
    );
    assert_eq!(
        plan(&never_answered, &settings()),
        vec![],
        "an IVR call never answered is not written when a wrap-up ends"
    );
    let w = event("call.transferred", json!({}), json!({}));
    assert!(
        plan(&w, &settings())
            .iter()
            .all(|p| p.key != "1001/message"),
        "a transfer happens during the call"
    );
    assert_eq!(
        conversation(&planned).map(|c| &c.policy),
        Some(&ConversationPolicy::AppendToOpenMatching)
    );
    assert!(
        planned.iter().any(|p| matches!(&p.op,
            Operation::EnsureCustomer(spec) if spec.assign_to.as_deref() == Some(AGENT))),
        "a customer the answer creates is created assigned to the answering agent"
    );
    let missed = event("call.missed", json!({"status": "missed"}), json!({}));
    assert_eq!(
        plan(&missed, &settings()),
        vec![],
        "a missed offer is not a conversation"
    );
}

#[test]
fn outbound_call_new_when_latest_not_open() {
    let w = event(
        "call.assigned",
        json!({"direction": "outbound", "status": "assigned"}),
        json!({}),
    );
    let planned = plan(&w, &settings());
    let spec = conversation(&planned)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    assert_eq!(spec.policy, ConversationPolicy::AppendToLatestIfOpen);
    assert_eq!(
        planned
            .iter()
            .find(|p| p.key == "1001/conversation")
            .map(|p| p.rule),
        Some(Rule::OutboundCallNewWhenLatestNotOpen)
    );
    let rows = [
        ("no conversation", vec![], Choice::Create),
        (
            "latest done",
            vec![
                summary("c1", "done", 2, "Billing", "voice"),
                summary("c0", "open", 1, "Billing", "voice"),
            ],
            Choice::Create,
        ),
        (
            "latest snoozed",
            vec![summary("c1", "snoozed", 2, "Billing", "voice")],
            Choice::Create,
        ),
    ];
    for (name, conversations, want) in rows {
        assert_eq!(
            choose_conversation(&spec, &conversations, None),
            want,
            "{name}"
        );
    }
}

#[test]
fn abandoned_call() {
    let w = event(
        "call.abandoned",
        json!({"status": "abandoned", "end_reason": "abandoned"}),
        json!({"agent": null}),
    );
    let planned = plan(&w, &settings());
    assert_eq!(
        rules(&planned),
        vec![
            (Rule::NewPhoneNumberCreatesCustomer, "customer"),
            (Rule::AbandonedCall, "conversation"),
            (Rule::StandardDataOnCreation, "message"),
            (Rule::PhoneNumberNote, "phone-note"),
        ],
        "created by default"
    );
    assert_eq!(
        conversation(&planned).map(|c| &c.policy),
        Some(&ConversationPolicy::AlwaysNew)
    );
    let off = Settings {
        create_abandoned: false,
        ..settings()
    };
    assert_eq!(plan(&w, &off), vec![], "the admin option creates nothing");
}

#[test]
fn voicemail_own_conversation() {
    let w = event(
        "call.voicemail",
        json!({"status": "voicemail"}),
        json!({"voicemail": {"recording_url": "http://127.0.0.1:8710/_sim/recordings/1001.wav"}}),
    );
    let planned = plan(&w, &settings());
    let spec = conversation(&planned)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    assert_eq!(spec.policy, ConversationPolicy::AlwaysNew);
    assert_eq!(
        spec.custom.get("ccaiVoicemailStatusStr"),
        Some(&json!("new"))
    );
    let open_same = [summary("c1", "open", 1, "Billing", "voice")];
    assert_eq!(
        choose_conversation(&spec, &open_same, None),
        Choice::Create,
        "even with an Open conversation of the same customer"
    );
    let message = planned.iter().find_map(|p| match &p.op {
        Operation::AddMessage(m) if m.primary => Some(m),
        _ => None,
    });
    assert!(
        matches!(message.and_then(|m| m.attachment.as_ref()), Some(FileSource::Url { url, .. }) if url.ends_with("1001.wav")),
        "the voicemail recording is attached"
    );
}

// ---- Ticket updates --------------------------------------------------------------------

#[test]
fn same_customer_menu_channel_appends() {
    let w = event("call.connected", json!({}), json!({}));
    let planned = plan(&w, &settings());
    let spec = conversation(&planned)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    assert_eq!(spec.menu.as_deref(), Some("Billing"));
    let rows: Vec<(&str, Vec<ConversationSummary>, Choice)> = vec![
        (
            "Open, same menu and channel",
            vec![summary("c1", "open", 1, "Billing", "voice")],
            Choice::Existing("c1".into()),
        ),
        (
            "the newest of two matching",
            vec![
                summary("c1", "open", 1, "Billing", "voice"),
                summary("c2", "open", 5, "Billing", "voice"),
            ],
            Choice::Existing("c2".into()),
        ),
        (
            "other menu",
            vec![summary("c1", "open", 1, "Sales", "voice")],
            Choice::Create,
        ),
        (
            "other channel",
            vec![summary("c1", "open", 1, "Billing", "chat")],
            Choice::Create,
        ),
        (
            "Open only: snoozed",
            vec![summary("c1", "snoozed", 1, "Billing", "voice")],
            Choice::Create,
        ),
        (
            "Open only: done",
            vec![summary("c1", "done", 1, "Billing", "voice")],
            Choice::Create,
        ),
    ];
    for (name, conversations, want) in rows {
        assert_eq!(
            choose_conversation(&spec, &conversations, None),
            want,
            "{name}"
        );
    }
    let chat = event(
        "chat.connected",
        json!({"origin": "web_sdk", "end_user": {"identifier": "u-1"}}),
        json!({}),
    );
    let chat_spec = plan(&chat, &settings());
    let chat_spec = conversation(&chat_spec)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    assert_eq!(
        choose_conversation(
            &chat_spec,
            &[summary("c1", "open", 1, "Billing", "chat")],
            None
        ),
        Choice::Existing("c1".into()),
        "a chat appends to an Open chat conversation"
    );
}

#[test]
fn outbound_call_appends_to_open() {
    let w = event(
        "call.assigned",
        json!({"direction": "outbound", "status": "assigned"}),
        json!({}),
    );
    let planned = plan(&w, &settings());
    let spec = conversation(&planned)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    let rows = [(
        "latest Open, any menu",
        vec![
            summary("c1", "done", 1, "Billing", "voice"),
            summary("c2", "open", 2, "Sales", "chat"),
        ],
        Choice::Existing("c2".into()),
    )];
    for (name, conversations, want) in rows {
        assert_eq!(
            choose_conversation(&spec, &conversations, None),
            want,
            "{name}"
        );
    }
    let given = event(
        "call.assigned",
        json!({"direction": "outbound", "status": "assigned", "out_ticket_id": "conv-9"}),
        json!({}),
    );
    let given = plan(&given, &settings());
    assert_eq!(
        conversation(&given).map(|c| &c.policy),
        Some(&ConversationPolicy::Given {
            conversation_id: "conv-9".into()
        }),
        "click-to-call from a conversation writes into it"
    );
}

#[test]
fn recording_attached_when_call_ends() {
    let ended = |recording: Option<&str>| {
        event(
            "call.ended",
            json!({"status": "wrap_up", "recording_url": recording, "call_duration": 95}),
            json!({}),
        )
    };
    let with = plan(&ended(Some("https://rec.example/1001.wav")), &settings());
    // The call's message, created by the end, carries the recording ...
    let message = with.iter().find(|p| p.key == "1001/message");
    assert!(matches!(
        message.map(|p| &p.op),
        Some(Operation::AddMessage(MessageSpec { attachment: Some(FileSource::Url { url, .. }), primary: true, .. })) if url == "https://rec.example/1001.wav"
    ));
    // ... and a message of its own is the fallback for a call message made earlier.
    let recording = with.iter().find(|p| p.key == "1001/recording");
    assert_eq!(
        recording.map(|p| p.rule),
        Some(Rule::RecordingAttachedWhenCallEnds)
    );
    assert_eq!(
        recording.and_then(|p| p.carried_by.as_deref()),
        Some("1001/message")
    );
    assert!(matches!(
        recording.map(|p| &p.op),
        Some(Operation::AddMessage(MessageSpec { attachment: Some(FileSource::Url { url, .. }), .. })) if url == "https://rec.example/1001.wav"
    ));
    let without = plan(&ended(None), &settings());
    assert!(
        without.iter().all(|p| p.key != "1001/recording"),
        "recording off: nothing attached"
    );
    let ready = event(
        "call.recording_ready",
        json!({"status": "finished", "recording_url": "https://rec.example/1001.wav"}),
        json!({}),
    );
    assert!(
        plan(&ready, &settings())
            .iter()
            .any(|p| p.key == "1001/recording"),
        "a recording ready later is attached under the same key (once)"
    );
}

#[test]
fn transfer_assigns_receiving_agent() {
    for channel in ["call", "chat"] {
        let w = event(
            &format!("{channel}.transferred"),
            json!({"status": "transferred"}),
            json!({"transfer": {"target": "Alan Turing", "agent_email": "Alan.Turing@example.com"}}),
        );
        let planned = plan(&w, &settings());
        assert!(
            planned
                .iter()
                .any(|p| p.rule == Rule::TransferAssignsReceivingAgent
                    && p.op
                        == Operation::AssignConversation {
                            agent_email: "alan.turing@example.com".into()
                        }),
            "{channel}: {planned:?}"
        );
    }
    let to_queue = event(
        "call.transferred",
        json!({"status": "transferred"}),
        json!({"transfer": {"target": "Billing"}}),
    );
    assert!(
        plan(&to_queue, &settings())
            .iter()
            .all(|p| p.rule != Rule::TransferAssignsReceivingAgent),
        "a transfer to a queue assigns when an agent answers"
    );
}

fn callback(reason: &str) -> Vec<Planned> {
    let w = event(
        "call.assigned",
        json!({"id": 1002, "direction": "outbound", "status": "assigned",
            "callback_of": {"session_id": 1001, "reason": reason}}),
        json!({}),
    );
    plan(&w, &settings())
}

#[test]
fn hang_up_and_call_back_appends() {
    let planned = callback("hang_up_and_call_back");
    let spec = conversation(&planned)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    assert_eq!(
        spec.policy,
        ConversationPolicy::AppendToSessionOrLatestOpen { session_id: 1001 }
    );
    assert_eq!(
        planned
            .iter()
            .find(|p| p.key == "1002/conversation")
            .map(|p| p.rule),
        Some(Rule::HangUpAndCallBackAppends)
    );
    let previous = summary("c1", "open", 1, "Billing", "voice");
    let newer = summary("c2", "open", 9, "Sales", "voice");
    assert_eq!(
        choose_conversation(&spec, &[previous.clone(), newer], Some(&previous)),
        Choice::Existing("c1".into()),
        "the previous call's conversation, not the newest"
    );
}

#[test]
fn short_call_call_back_appends() {
    let planned = callback("call_back");
    let spec = conversation(&planned)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    assert_eq!(
        planned
            .iter()
            .find(|p| p.key == "1002/conversation")
            .map(|p| p.rule),
        Some(Rule::ShortCallCallBackAppends)
    );
    let previous = summary("c1", "open", 1, "Billing", "voice");
    assert_eq!(
        choose_conversation(&spec, std::slice::from_ref(&previous), Some(&previous)),
        Choice::Existing("c1".into())
    );
    let closed = summary("c1", "done", 1, "Billing", "voice");
    assert_eq!(
        choose_conversation(&spec, std::slice::from_ref(&closed), Some(&closed)),
        Choice::Create,
        "the open session only"
    );
}

#[test]
fn smart_action_completed() {
    let w = event(
        "call.smart_action",
        json!({}),
        json!({"smart_action": {"name": "Request Photos", "result": "2 photos",
            "files": [{"name": "a.jpg", "url": "https://f.example/a.jpg", "content_type": "image/jpeg"},
                      {"name": "b.jpg", "url": "https://f.example/b.jpg", "content_type": "image/jpeg"}]}}),
    );
    let planned = plan(&w, &settings());
    let mine: Vec<_> = planned
        .iter()
        .filter(|p| p.rule == Rule::SmartActionCompleted)
        .collect();
    assert_eq!(mine.len(), 3, "the results and two shared files: {mine:?}");
    assert!(
        matches!(&mine[0].op, Operation::AddNote { body, .. } if body == "SmartAction Request Photos completed: 2 photos")
    );
    assert!(
        matches!(&mine[2].op, Operation::AddMessage(MessageSpec { attachment: Some(FileSource::Url { name, .. }), .. }) if name == "b.jpg")
    );
    assert!(
        planned.iter().any(|p| p.key == "1001/conversation"),
        "a SmartAction on a session not yet written writes it first"
    );
}

#[test]
fn smart_action_failed_on_user_side() {
    let w = event(
        "call.smart_action",
        json!({}),
        json!({"smart_action": {"name": "Get Verification", "status": "failed", "error": "fingerprint access not enabled"}}),
    );
    let planned = plan(&w, &settings());
    let failed: Vec<_> = planned
        .iter()
        .filter(|p| p.rule == Rule::SmartActionFailedOnUserSide)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        matches!(&failed[0].op, Operation::AddNote { body, .. } if body == "SmartAction Get Verification failed: fingerprint access not enabled")
    );
}

#[test]
fn custom_data_mapped() {
    let w = event(
        "call.offered",
        json!({"status": "ringing", "origin": "mobile_sdk", "end_user": {"identifier": "app-user-9"},
            "custom_data": {
                "order": {"label": "Order", "value": "A-17", "type": "string"},
                "vip": {"value": true, "type": "boolean"},
                "since": {"value": 1795276800000_i64, "type": "date"},
                "unmapped": {"value": "x", "type": "string"},
                "wrong": {"value": "text", "type": "string"}}}),
        json!({}),
    );
    let mapping = |sdk_key: &str, field: &str| FieldMapping {
        sdk_key: sdk_key.into(),
        field: field.into(),
    };
    let settings = Settings {
        mapping: vec![
            mapping("order", "orderIdStr"),
            mapping("vip", "vipBool"),
            mapping("since", "customerSinceAt"),
            mapping("wrong", "scoreNum"),
        ],
        ..settings()
    };
    let planned = plan(&w, &settings);
    let custom = planned.iter().find_map(|p| match (&p.rule, &p.op) {
        (Rule::CustomDataMapped, Operation::UpdateConversation { custom }) => Some(custom.clone()),
        _ => None,
    });
    assert_eq!(
        custom,
        Some(
            json!({"orderIdStr": "A-17", "vipBool": true, "customerSinceAt": "2026-11-21T16:00:00.000Z"})
                .as_object()
                .cloned()
                .unwrap_or_default()
        ),
        "mapped keys to their fields, a value that does not fit left out"
    );
    assert!(
        plan(&w, &Settings::default())
            .iter()
            .all(|p| p.rule != Rule::CustomDataMapped),
        "no mapping, nothing"
    );
    let rows = [
        (vec![mapping("a", "aStr")], Ok(())),
        (
            vec![mapping("a", "aString")],
            Err("must be a camelCase name"),
        ),
        (vec![mapping("a", "Str")], Err("must be a camelCase name")),
        (
            vec![mapping("a", "aStr"), mapping("a", "bStr")],
            Err("mapped twice"),
        ),
        (vec![mapping("", "aStr")], Err("sdk_key must be")),
    ];
    for (mapping, want) in rows {
        match (check_mapping(&mapping), want) {
            (Ok(()), Ok(())) => {}
            (Err(got), Err(want)) => assert!(got.contains(want), "{got}"),
            (got, want) => panic!("{mapping:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn csat_rating_added() {
    let w = event(
        "call.csat",
        json!({"status": "finished"}),
        json!({"csat": {"rating": 4, "comment": "Quick"}}),
    );
    let planned = plan(&w, &settings());
    assert!(planned.iter().any(|p| p.rule == Rule::CsatRatingAdded
        && matches!(&p.op, Operation::AddNote { body, .. } if body == "CSAT rating: 4/5. Comment: Quick")));
    assert!(
        planned.iter().all(|p| p.key != "1001/csat-fields"),
        "no record fields before provisioning"
    );
    let provisioned = Settings {
        record_fields: true,
        ..settings()
    };
    let planned = plan(&w, &provisioned);
    let fields = planned
        .iter()
        .find(|p| p.key == "1001/csat-fields")
        .map(|p| &p.op);
    assert_eq!(
        fields,
        Some(&Operation::UpdateMessage {
            custom: json!({"ccaiCsatRatingNum": 4, "ccaiCsatCommentTxt": "Quick"})
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
    );
}

#[test]
fn voicemail_read_dismissed_called_back() {
    for (kind, status) in [
        ("voicemail_read", "read"),
        ("voicemail_dismissed", "dismissed"),
        ("voicemail_called_back", "called_back"),
    ] {
        let w = event(
            &format!("call.{kind}"),
            json!({"status": "voicemail"}),
            json!({}),
        );
        let planned = plan(&w, &settings());
        assert_eq!(
            rules(&planned),
            vec![
                (
                    Rule::VoicemailReadDismissedCalledBack,
                    format!("voicemail-{status}").as_str()
                ),
                (
                    Rule::VoicemailReadDismissedCalledBack,
                    format!("voicemail-{status}-note").as_str()
                ),
            ],
            "{kind}"
        );
        assert_eq!(
            planned[0].op,
            Operation::UpdateConversation {
                custom: json!({"ccaiVoicemailStatusStr": status})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            }
        );
    }
}

// ---- Contacts --------------------------------------------------------------------------

#[test]
fn new_phone_number_creates_customer() {
    let rows = [
        ("E.164", "+14155552671", Some("+14155552671")),
        (
            "national, default country",
            "(415) 555-2671",
            Some("+14155552671"),
        ),
        ("not a number", "anonymous", None),
    ];
    for (name, number, want) in rows {
        let w = event(
            "call.connected",
            json!({"end_user": {"identifier": number}}),
            json!({}),
        );
        let planned = plan(&w, &settings());
        let got = customer(&planned).map(|(rule, spec)| (rule, spec.lookup.clone()));
        match want {
            Some(phone) => assert_eq!(
                got,
                Some((
                    Rule::NewPhoneNumberCreatesCustomer,
                    vec![CustomerKey::Phone(phone.into())]
                )),
                "{name}: looked up by phone before it is created"
            ),
            None => assert_eq!(got, None, "{name}"),
        }
    }
}

#[test]
fn new_app_user_creates_customer() {
    let w = event(
        "chat.offered",
        json!({"status": "ringing", "origin": "mobile_sdk",
            "end_user": {"identifier": "app-user-9", "email": "jean@example.com", "phone": "+33612345678", "name": "Jean"}}),
        json!({}),
    );
    for (account_field, custom) in [
        (false, json!({})),
        (true, json!({"ccaiCustomUserIdStr": "app-user-9"})),
    ] {
        let planned = plan(
            &w,
            &Settings {
                account_field,
                ..settings()
            },
        );
        let (rule, spec) = customer(&planned).unwrap_or_else(|| panic!("no customer"));
        assert_eq!(rule, Rule::NewAppUserCreatesCustomer);
        assert_eq!(
            spec.lookup,
            vec![
                CustomerKey::ExternalId("app-user-9".into()),
                CustomerKey::Email("jean@example.com".into()),
                CustomerKey::Phone("+33612345678".into()),
            ]
        );
        assert_eq!(spec.external_id.as_deref(), Some("app-user-9"));
        assert_eq!(
            Value::Object(spec.custom.clone()),
            custom,
            "Custom User ID once provisioned"
        );
    }
}

#[test]
fn new_customer_assigned_to_agent() {
    let w = event("call.connected", json!({}), json!({}));
    let planned = plan(&w, &settings());
    let assignment = planned
        .iter()
        .find(|p| p.rule == Rule::NewCustomerAssignedToAgent);
    assert_eq!(
        assignment.map(|p| &p.op),
        Some(&Operation::AssignCustomer {
            agent_email: AGENT.into()
        }),
        "planned at assignment; the gateway applies it only to a customer this session created"
    );
    let unassigned = event(
        "call.abandoned",
        json!({"status": "abandoned"}),
        json!({"agent": null}),
    );
    assert!(plan(&unassigned, &settings())
        .iter()
        .all(|p| p.rule != Rule::NewCustomerAssignedToAgent));
}

// ---- Agent experience, standard data, phone number, transcript, record fields ----------

#[test]
fn conversation_assigned_to_answering_agent() {
    let w = event("call.connected", json!({}), json!({}));
    assert!(plan(&w, &settings()).iter().any(|p| p.rule
        == Rule::ConversationAssignedToAnsweringAgent
        && p.op
            == Operation::AssignConversation {
                agent_email: AGENT.into()
            }));
}

#[test]
fn standard_data_on_creation() {
    let w = event(
        "call.connected",
        json!({"lang": "fr", "menu_path": "Support > Billing"}),
        json!({}),
    );
    let planned = plan(&w, &settings());
    let spec = conversation(&planned)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    assert_eq!(
        Value::Object(spec.custom),
        json!({"ccaiCallIdStr": "1001", "ccaiLanguageStr": "fr", "ccaiMenuSelectionStr": "Support > Billing", "ccaiChannelStr": "voice"})
    );
}

#[test]
fn phone_number_note() {
    let w = event(
        "call.connected",
        json!({"end_user": {"identifier": "0612345678"}}),
        json!({}),
    );
    let french = Settings {
        default_country: "FR".into(),
        ..settings()
    };
    let planned = plan(&w, &french);
    assert!(planned.iter().any(|p| p.rule == Rule::PhoneNumberNote
        && matches!(&p.op, Operation::AddNote { body, .. } if body == "Phone number: +33612345678")),
        "with the country code: {planned:?}");
    let chat = event(
        "chat.connected",
        json!({"origin": "web_sdk", "end_user": {"identifier": "u-1"}}),
        json!({}),
    );
    assert!(
        plan(&chat, &settings())
            .iter()
            .all(|p| p.rule != Rule::PhoneNumberNote),
        "no phone, no note"
    );
}

#[test]
fn chat_transcript_attached() {
    let w = event(
        "chat.transcript_ready",
        json!({"status": "finished", "origin": "web_sdk", "end_user": {"identifier": "u-1"}}),
        json!({"transcript": {"text": "Agent: Hello\nCustomer: Hi"}}),
    );
    let planned = plan(&w, &settings());
    let note = planned
        .iter()
        .find(|p| p.rule == Rule::ChatTranscriptAttached)
        .map(|p| &p.op);
    assert!(
        matches!(note, Some(Operation::AddNote { attachment: Some(FileSource::Inline { name, text, .. }), .. })
            if name == "chat-1001-transcript.txt" && text.contains("Customer: Hi")),
        "{note:?}"
    );
}

#[test]
fn record_fields_filled() {
    let connected = event(
        "chat.connected",
        json!({"origin": "web_sdk", "end_user": {"identifier": "u-1", "email": "jean@example.com", "phone": "+14155550123"}}),
        json!({}),
    );
    let message = |settings: &Settings| {
        plan(&connected, settings)
            .into_iter()
            .find_map(|p| match p.op {
                Operation::AddMessage(m) if m.primary => Some((p.rule, Value::Object(m.custom))),
                _ => None,
            })
    };
    assert_eq!(
        message(&settings()),
        Some((Rule::StandardDataOnCreation, json!({}))),
        "before provisioning: none"
    );
    assert_eq!(
        message(&Settings {
            record_fields: true,
            ..settings()
        }),
        Some((
            Rule::RecordFieldsFilled,
            json!({"ccaiQueueNameStr": "Billing", "ccaiSessionTypeStr": "Web chat", "ccaiSessionIdStr": "1001",
                "ccaiFromPhoneNumberStr": "+14155550123", "ccaiCustomerMenuSelectionStr": "Billing",
                "ccaiEmailUsingInWebStr": "jean@example.com"})
        ))
    );
    let ended = event(
        "call.ended",
        json!({"status": "wrap_up", "call_duration": 95, "hold_duration": 10, "queue_duration": 12}),
        json!({}),
    );
    let at_end = plan(
        &ended,
        &Settings {
            record_fields: true,
            ..settings()
        },
    );
    let durations_map =
        json!({"ccaiCallDurationNum": 95, "ccaiHoldTimeNum": 10, "ccaiWaitTimeNum": 12})
            .as_object()
            .cloned()
            .unwrap_or_default();
    // The call's message, created when the call ends, has them ...
    let Some(Operation::AddMessage(call_message)) = at_end
        .iter()
        .find(|p| p.key == "1001/message")
        .map(|p| &p.op)
    else {
        panic!("no call message at the end: {at_end:?}");
    };
    for (name, value) in &durations_map {
        assert_eq!(call_message.custom.get(name), Some(value), "{name}");
    }
    // ... and an update is the fallback for a message made by an earlier event.
    let durations = at_end.iter().find(|p| p.key == "1001/durations");
    assert_eq!(
        durations.map(|p| &p.op),
        Some(&Operation::UpdateMessage {
            custom: durations_map
        })
    );
    assert_eq!(
        durations.and_then(|p| p.carried_by.as_deref()),
        Some("1001/message")
    );
    for field in RECORD_FIELDS
        .iter()
        .chain(&ACCOUNT_FIELDS)
        .chain(&STANDARD_FIELDS)
    {
        assert!(
            attribute_type(field.name).is_some(),
            "{} has a Kustomer suffix",
            field.name
        );
    }
}

// ---- Idempotency and the chooser's own guarantees ----------------------------------------

#[test]
fn the_same_fact_always_gets_the_same_key() {
    let connected = plan(&event("call.connected", json!({}), json!({})), &settings());
    let ended = plan(
        &event("call.ended", json!({"status": "wrap_up"}), json!({})),
        &settings(),
    );
    // The only difference allowed: the event that assigns the conversation (and a new
    // customer) names its agent for their creation. Whichever event is planned first, the
    // outbox keeps its operation; without the agent, the assignment is a request of its own.
    let keys = |p: &[Planned]| {
        p.iter()
            .map(|p| {
                let mut op = p.op.clone();
                match &mut op {
                    Operation::ResolveConversation(spec) => spec.assign_to = None,
                    Operation::EnsureCustomer(spec) => spec.assign_to = None,
                    _ => {}
                }
                (p.key.clone(), op)
            })
            .collect::<Vec<_>>()
    };
    for (key, op) in keys(&ended) {
        if let Some((_, first)) = keys(&connected).into_iter().find(|(k, _)| *k == key) {
            assert_eq!(
                first, op,
                "{key}: replanned identically, so the outbox keeps one"
            );
        }
    }
    assert_eq!(
        connected,
        plan(&event("call.connected", json!({}), json!({})), &settings())
    );
}

#[test]
fn the_conversation_an_event_assigns_is_created_assigned() {
    let connected = plan(&event("call.connected", json!({}), json!({})), &settings());
    let assigned = connected.iter().find_map(|p| match &p.op {
        Operation::AssignConversation { agent_email } => Some(agent_email.clone()),
        _ => None,
    });
    assert!(assigned.is_some(), "the answering agent is assigned");
    assert_eq!(
        conversation(&connected).and_then(|c| c.assign_to.clone()),
        assigned,
        "and the conversation, if created, is created assigned to them"
    );
    let ended = plan(
        &event("call.ended", json!({"status": "wrap_up"}), json!({})),
        &settings(),
    );
    assert_eq!(
        conversation(&ended).map(|c| c.assign_to.clone()),
        Some(None)
    );
}

#[test]
fn a_conversation_this_session_created_is_found_again() {
    let planned = plan(
        &event(
            "call.voicemail",
            json!({"status": "voicemail"}),
            json!({"voicemail": {"recording_url": "https://r.example/1.wav"}}),
        ),
        &settings(),
    );
    let spec = conversation(&planned)
        .cloned()
        .unwrap_or_else(|| panic!("no conversation"));
    let mut mine = summary("c7", "open", 1, "Billing", "voice");
    mine.external_id = Some("ccai-call-1001".into());
    assert_eq!(
        choose_conversation(&spec, &[mine], None),
        Choice::Existing("c7".into()),
        "a retry after a crash reuses what the first attempt created"
    );
}

#[test]
fn custom_values_follow_the_suffix() {
    let datum = |value: CustomValue, kind| CustomDatum {
        key: "k".into(),
        label: None,
        kind,
        value,
    };
    use crate::session_webhook::CustomType as T;
    let rows = [
        (
            "aStr",
            datum(CustomValue::Text("x".repeat(2000)), T::String),
            Ok(json!("x".repeat(1024))),
        ),
        (
            "aNum",
            datum(CustomValue::Number(2.5), T::Number),
            Ok(json!(2.5)),
        ),
        (
            "aNum",
            datum(CustomValue::Text("2".into()), T::String),
            Err(()),
        ),
        (
            "aUrl",
            datum(CustomValue::Text("https://x.example".into()), T::Url),
            Ok(json!("https://x.example")),
        ),
        (
            "aUrl",
            datum(CustomValue::Text("ftp://x".into()), T::String),
            Err(()),
        ),
        ("aAt", datum(CustomValue::Number(0.0), T::Number), Err(())),
        (
            "aBool",
            datum(CustomValue::Bool(false), T::Boolean),
            Ok(json!(false)),
        ),
        (
            "aStr",
            datum(CustomValue::Bool(true), T::Boolean),
            Ok(json!("true")),
        ),
        ("a", datum(CustomValue::Bool(true), T::Boolean), Err(())),
    ];
    for (field, datum, want) in rows {
        assert_eq!(
            custom_value(field, &datum).map_err(|_| ()),
            want,
            "{field} {datum:?}"
        );
    }
}
