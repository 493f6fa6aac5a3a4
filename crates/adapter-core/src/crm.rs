//! The CRM sync rules: a CCAI session event in, the Kustomer operations it calls for out.
//!
//! Pure: no I/O, no clock. [`plan`] maps one decoded session webhook to a list of [`Planned`]
//! operations, each with the seed [`Rule`] it comes from and an idempotency key (`{session}/…`)
//! that is the same every time the same fact is planned again, so a replayed or repeated event
//! adds nothing the durable outbox already holds. What needs Kustomer's data (is there an Open
//! conversation for this customer, menu and channel?) is decided by [`choose_conversation`] when
//! the gateway has read it.
//!
//! Field names: the standard data lives on the conversation (`ccaiCallIdStr`, `ccaiLanguageStr`,
//! `ccaiMenuSelectionStr`, plus `ccaiChannelStr` for the append rule and `ccaiVoicemailStatusStr`);
//! the seeds' record fields (provisioned by an admin, [`RECORD_FIELDS`]) on the session's message,
//! where Kustomer shows them under Additional Information; the account field on the customer.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    agent_events::{Channel, Direction},
    iso_time::format_utc_ms,
    phone,
    session_webhook::{
        CallbackReason, CustomDatum, CustomValue, Detail, EventKind, Origin, Session,
        SessionWebhook, SmartActionOutcome,
    },
};

/// A rule of the seeds ("Kustomer + CCAI Platform Rules and Behaviors"), by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    // Ticket creation
    MobileSdkCallOrChatArrives,
    IvrCallAnswered,
    OutboundCallNewWhenLatestNotOpen,
    AbandonedCall,
    VoicemailOwnConversation,
    // Ticket updates
    SameCustomerMenuChannelAppends,
    OutboundCallAppendsToOpen,
    RecordingAttachedWhenCallEnds,
    TransferAssignsReceivingAgent,
    HangUpAndCallBackAppends,
    ShortCallCallBackAppends,
    SmartActionCompleted,
    SmartActionFailedOnUserSide,
    CustomDataMapped,
    CsatRatingAdded,
    VoicemailReadDismissedCalledBack,
    // Contacts
    NewPhoneNumberCreatesCustomer,
    NewAppUserCreatesCustomer,
    NewCustomerAssignedToAgent,
    // Agent experience, standard data, phone number, transcript, custom fields
    ConversationAssignedToAnsweringAgent,
    StandardDataOnCreation,
    PhoneNumberNote,
    ChatTranscriptAttached,
    RecordFieldsFilled,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::MobileSdkCallOrChatArrives => "mobile_sdk_call_or_chat_arrives",
            Rule::IvrCallAnswered => "ivr_call_answered",
            Rule::OutboundCallNewWhenLatestNotOpen => "outbound_call_new_when_latest_not_open",
            Rule::AbandonedCall => "abandoned_call",
            Rule::VoicemailOwnConversation => "voicemail_own_conversation",
            Rule::SameCustomerMenuChannelAppends => "same_customer_menu_channel_appends",
            Rule::OutboundCallAppendsToOpen => "outbound_call_appends_to_open",
            Rule::RecordingAttachedWhenCallEnds => "recording_attached_when_call_ends",
            Rule::TransferAssignsReceivingAgent => "transfer_assigns_receiving_agent",
            Rule::HangUpAndCallBackAppends => "hang_up_and_call_back_appends",
            Rule::ShortCallCallBackAppends => "short_call_call_back_appends",
            Rule::SmartActionCompleted => "smart_action_completed",
            Rule::SmartActionFailedOnUserSide => "smart_action_failed_on_user_side",
            Rule::CustomDataMapped => "custom_data_mapped",
            Rule::CsatRatingAdded => "csat_rating_added",
            Rule::VoicemailReadDismissedCalledBack => "voicemail_read_dismissed_called_back",
            Rule::NewPhoneNumberCreatesCustomer => "new_phone_number_creates_customer",
            Rule::NewAppUserCreatesCustomer => "new_app_user_creates_customer",
            Rule::NewCustomerAssignedToAgent => "new_customer_assigned_to_agent",
            Rule::ConversationAssignedToAnsweringAgent => {
                "conversation_assigned_to_answering_agent"
            }
            Rule::StandardDataOnCreation => "standard_data_on_creation",
            Rule::PhoneNumberNote => "phone_number_note",
            Rule::ChatTranscriptAttached => "chat_transcript_attached",
            Rule::RecordFieldsFilled => "record_fields_filled",
        }
    }
}

/// A custom attribute the admin action provisions: its label (the seeds' name), its Kustomer
/// name (the suffix sets the type) and the klass it lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomField {
    pub label: &'static str,
    pub name: &'static str,
    pub klass: &'static str,
}

/// The account field of the seeds.
pub const ACCOUNT_FIELDS: [CustomField; 1] = [CustomField {
    label: "Custom User ID",
    name: "ccaiCustomUserIdStr",
    klass: "customer",
}];

/// The record fields of the seeds, on the message (Additional Information).
pub const RECORD_FIELDS: [CustomField; 11] = [
    record("Queue Name", "ccaiQueueNameStr"),
    record("Session Type", "ccaiSessionTypeStr"),
    record("Session ID", "ccaiSessionIdStr"),
    record("From Phone Number", "ccaiFromPhoneNumberStr"),
    record("Call Duration", "ccaiCallDurationNum"),
    record("Hold Time", "ccaiHoldTimeNum"),
    record("Wait Time", "ccaiWaitTimeNum"),
    record("CSAT Rating", "ccaiCsatRatingNum"),
    record("CSAT Comment", "ccaiCsatCommentTxt"),
    record("Customer Menu Selection", "ccaiCustomerMenuSelectionStr"),
    record("Email using In-Web", "ccaiEmailUsingInWebStr"),
];

const fn record(label: &'static str, name: &'static str) -> CustomField {
    CustomField {
        label,
        name,
        klass: "message",
    }
}

/// The standard data the app writes on every conversation it creates (installed with the app,
/// not provisioned by the admin action).
pub const STANDARD_FIELDS: [CustomField; 5] = [
    standard("Call ID", "ccaiCallIdStr"),
    standard("Language", "ccaiLanguageStr"),
    standard("Inbound Menu Selection", "ccaiMenuSelectionStr"),
    standard("Channel", "ccaiChannelStr"),
    standard("Voicemail Status", "ccaiVoicemailStatusStr"),
];

const fn standard(label: &'static str, name: &'static str) -> CustomField {
    CustomField {
        label,
        name,
        klass: "conversation",
    }
}

/// The type a Kustomer custom attribute's name declares by its suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeType {
    Str,
    Txt,
    Num,
    At,
    Bool,
    Url,
}

/// The type of a custom attribute name; `None` when the suffix is not one Kustomer knows or
/// the name has nothing before it.
pub fn attribute_type(name: &str) -> Option<AttributeType> {
    let ok_name = |stem: &str| {
        !stem.is_empty()
            && stem.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && stem.chars().all(|c| c.is_ascii_alphanumeric())
    };
    [
        ("Str", AttributeType::Str),
        ("Txt", AttributeType::Txt),
        ("Num", AttributeType::Num),
        ("At", AttributeType::At),
        ("Bool", AttributeType::Bool),
        ("Url", AttributeType::Url),
    ]
    .into_iter()
    .find_map(|(suffix, t)| {
        name.strip_suffix(suffix)
            .filter(|stem| ok_name(stem))
            .map(|_| t)
    })
}

/// The longest `Str` value Kustomer takes.
pub const MAX_STR_CHARS: usize = 1024;

/// An SDK custom data value converted for the Kustomer field `name`, or why it cannot be.
pub fn custom_value(name: &str, datum: &CustomDatum) -> Result<Value, String> {
    let kind = attribute_type(name)
        .ok_or_else(|| format!("{name:?} does not end in Str, Txt, Num, At, Bool or Url"))?;
    let refuse = || {
        format!(
            "the value of {:?} does not fit {name:?} ({:?})",
            datum.key, kind
        )
    };
    match (kind, &datum.value) {
        (AttributeType::Str, CustomValue::Text(t)) => {
            Ok(Value::String(t.chars().take(MAX_STR_CHARS).collect()))
        }
        (AttributeType::Txt, CustomValue::Text(t)) => Ok(Value::String(t.clone())),
        (AttributeType::Url, CustomValue::Text(t))
            if t.starts_with("https://") || t.starts_with("http://") =>
        {
            Ok(Value::String(t.clone()))
        }
        (AttributeType::Str | AttributeType::Txt, CustomValue::Number(n)) => {
            Ok(Value::String(n.to_string()))
        }
        (AttributeType::Str | AttributeType::Txt, CustomValue::Bool(b)) => {
            Ok(Value::String(b.to_string()))
        }
        (AttributeType::Num, CustomValue::Number(n)) => serde_json::Number::from_f64(*n)
            .map(Value::Number)
            .ok_or_else(refuse),
        (AttributeType::At, CustomValue::Number(ms))
            if datum.kind == crate::session_webhook::CustomType::Date =>
        {
            Ok(Value::String(format_utc_ms(*ms as i64)))
        }
        (AttributeType::Bool, CustomValue::Bool(b)) => Ok(Value::Bool(*b)),
        _ => Err(refuse()),
    }
}

/// Where one SDK custom data key goes in Kustomer (set up by an admin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMapping {
    /// The key in the SDK's `custom_data`.
    pub sdk_key: String,
    /// The conversation's custom attribute, e.g. `orderIdStr`.
    pub field: String,
}

/// Checks an admin's mapping: known suffixes, no key twice.
pub fn check_mapping(mapping: &[FieldMapping]) -> Result<(), String> {
    if mapping.len() > 100 {
        return Err("at most 100 mapped keys".into());
    }
    for (i, m) in mapping.iter().enumerate() {
        if m.sdk_key.trim().is_empty() || m.sdk_key.chars().count() > 100 {
            return Err(format!("mapping {i}: sdk_key must be 1 to 100 characters"));
        }
        if m.field.chars().count() > 100 || attribute_type(&m.field).is_none() {
            return Err(format!(
                "mapping {i}: field {:?} must be a camelCase name ending in Str, Txt, Num, At, Bool or Url",
                m.field
            ));
        }
        if mapping[..i].iter().any(|o| o.sdk_key == m.sdk_key) {
            return Err(format!(
                "mapping {i}: sdk_key {:?} is mapped twice",
                m.sdk_key
            ));
        }
    }
    Ok(())
}

/// The org's settings the rules read.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Create a conversation for an abandoned call (the seeds' default; admins may turn it off).
    pub create_abandoned: bool,
    /// The record fields exist and this session started after they were provisioned.
    pub record_fields: bool,
    /// The account field exists (provisioned before this session started).
    pub account_field: bool,
    /// SDK custom data to conversation fields.
    pub mapping: Vec<FieldMapping>,
    /// For phone numbers written without a country code (ISO 3166 alpha-2).
    pub default_country: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            create_abandoned: true,
            record_fields: false,
            account_field: false,
            mapping: Vec::new(),
            default_country: "US".into(),
        }
    }
}

/// How a customer is found before one is created (emails, phones and external ids are unique
/// per org: look up first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum CustomerKey {
    ExternalId(String),
    Email(String),
    Phone(String),
}

/// A customer to find or create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerSpec {
    /// Tried in order; the first found is the customer.
    pub lookup: Vec<CustomerKey>,
    pub name: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub custom: Map<String, Value>,
    /// The agent (email) the same event assigns a new customer to: a customer created for it
    /// is created with the assignment, when Kustomer takes it there (see the gateway's
    /// `HttpKustomer::create_customer`), and the assignment then needs no request of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_to: Option<String>,
}

/// Which conversation a session goes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum ConversationPolicy {
    /// The customer's Open conversation with the same menu selection and channel, else a new one.
    AppendToOpenMatching,
    /// The customer's most recent conversation when it is Open, else a new one.
    AppendToLatestIfOpen,
    /// The conversation of `session_id` when it is still Open, else as `AppendToLatestIfOpen`.
    AppendToSessionOrLatestOpen { session_id: i64 },
    /// The conversation the platform names (`out_ticket_id`).
    Given { conversation_id: String },
    /// Always a new conversation.
    AlwaysNew,
}

/// A conversation to find or create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationSpec {
    pub policy: ConversationPolicy,
    /// Marks the conversation this session created, so a retry finds it instead of creating a
    /// second one.
    pub external_id: String,
    pub name: String,
    pub channel: Channel,
    pub direction: Direction,
    /// The menu selection the append rule compares.
    pub menu: Option<String>,
    /// Standard data, written when the conversation is created.
    pub custom: Map<String, Value>,
    /// The agent (email) the same event assigns the conversation to: a conversation created
    /// for it is created assigned (Kustomer's `POST /v1/conversations` takes `assignedUsers`),
    /// and the assignment needs no request of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_to: Option<String>,
}

/// A file to attach (two-step upload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum FileSource {
    /// Fetched from the platform (a recording, a shared file).
    Url {
        url: String,
        name: String,
        content_type: String,
    },
    /// Made here (a chat transcript).
    Inline {
        name: String,
        content_type: String,
        text: String,
    },
}

/// A message recorded in the session's conversation (nothing is sent to the customer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageSpec {
    pub external_id: String,
    pub channel: Channel,
    pub direction: Direction,
    pub preview: String,
    pub custom: Map<String, Value>,
    pub attachment: Option<FileSource>,
    /// Whether this is the session's own message (the one later field updates go to).
    pub primary: bool,
}

/// One write to Kustomer. Operations that need the session's customer or conversation read
/// them from what earlier operations of the same session found or created.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    EnsureCustomer(CustomerSpec),
    ResolveConversation(ConversationSpec),
    AddMessage(MessageSpec),
    AddNote {
        external_id: String,
        body: String,
        attachment: Option<FileSource>,
    },
    /// Fields on the session's own message (durations, CSAT).
    UpdateMessage {
        custom: Map<String, Value>,
    },
    UpdateConversation {
        custom: Map<String, Value>,
    },
    /// Assigns the conversation to the Kustomer user with the agent's email.
    AssignConversation {
        agent_email: String,
    },
    /// Assigns the customer to the agent, only when this session created the customer.
    AssignCustomer {
        agent_email: String,
    },
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Operation::EnsureCustomer(_) => "ensure_customer",
            Operation::ResolveConversation(_) => "resolve_conversation",
            Operation::AddMessage(_) => "add_message",
            Operation::AddNote { .. } => "add_note",
            Operation::UpdateMessage { .. } => "update_message",
            Operation::UpdateConversation { .. } => "update_conversation",
            Operation::AssignConversation { .. } => "assign_conversation",
            Operation::AssignCustomer { .. } => "assign_customer",
        }
    }
}

/// An operation with the rule it serves and its idempotency key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    pub rule: Rule,
    /// `{session id}/{what}`: the same fact always gets the same key.
    pub key: String,
    pub session_id: i64,
    pub op: Operation,
    /// What the operation with this key carries when this same event plans it: a call's
    /// message is created when the call is over, with the durations and the recording in the
    /// same request. When that message is new, this operation is stored as done already (it
    /// keeps its key, so a later event cannot plan it again); when an earlier event of the
    /// session planned the message, this operation runs (an update, a message of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_by: Option<String>,
}

/// What a session is, for its type field and its conversation.
fn session_type(webhook: &SessionWebhook) -> &'static str {
    let s = &webhook.session;
    let chat = s.channel == Channel::Chat;
    match (s.direction, s.crm.origin, chat, webhook.kind) {
        (_, _, false, EventKind::Voicemail) => "Voicemail",
        (Direction::Outbound, _, _, _) => "Outbound call",
        (_, Some(Origin::MobileSdk), false, _) => "Mobile call",
        (_, Some(Origin::MobileSdk), true, _) => "Mobile chat",
        (_, Some(Origin::WebSdk), false, _) => "Web call",
        (_, Some(Origin::WebSdk), true, _) | (_, None, true, _) => "Web chat",
        _ => "IVR call",
    }
}

/// Where the session came from, with the defaults when the platform does not say: an inbound
/// call is an IVR call, a chat comes from an SDK, an outbound call from an agent.
fn origin(webhook: &SessionWebhook) -> Origin {
    let s = &webhook.session;
    match (s.crm.origin, s.direction, s.channel) {
        (Some(o), _, _) => o,
        (None, Direction::Outbound, _) => Origin::Agent,
        (None, _, Channel::Chat) => Origin::WebSdk,
        (None, _, Channel::Voice) => Origin::Ivr,
    }
}

/// The caller's number in E.164, when there is one.
fn phone_number(webhook: &SessionWebhook, settings: &Settings) -> Option<String> {
    let s = &webhook.session;
    let raw = match (origin(webhook), s.channel) {
        (Origin::Ivr | Origin::Agent, Channel::Voice) => {
            s.end_user.clone().or_else(|| s.crm.phone.clone())
        }
        _ => s.crm.phone.clone(),
    }?;
    let country = phone::country(&settings.default_country).or_else(|| phone::country("US"))?;
    phone::normalise(&raw, country).ok().map(|n| n.e164)
}

fn menu_selection(webhook: &SessionWebhook) -> Option<String> {
    let crm = &webhook.session.crm;
    crm.menu_path
        .clone()
        .or_else(|| crm.menu.as_ref().map(|m| m.name.clone()))
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => "voice",
        Channel::Chat => "chat",
    }
}

fn object(pairs: impl IntoIterator<Item = (&'static str, Option<Value>)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
}

struct Planner<'a> {
    webhook: &'a SessionWebhook,
    settings: &'a Settings,
    out: Vec<Planned>,
}

impl Planner<'_> {
    fn id(&self) -> i64 {
        self.webhook.session.id
    }

    fn push(&mut self, rule: Rule, what: &str, op: Operation) {
        let session_id = self.id();
        self.out.push(Planned {
            rule,
            key: format!("{session_id}/{what}"),
            session_id,
            op,
            carried_by: None,
        });
    }

    /// As [`Planner::push`], for what this event's message carries when it is new (see
    /// [`Planned::carried_by`]).
    fn push_carried_by_message(&mut self, rule: Rule, what: &str, op: Operation) {
        self.push(rule, what, op);
        let message = format!("{}/message", self.id());
        if let Some(last) = self.out.last_mut() {
            last.carried_by = Some(message);
        }
    }

    fn agent_email(&self) -> Option<String> {
        self.webhook.agent.as_ref().and_then(|a| a.email.clone())
    }

    /// The customer: an app user by its identifier (and email, phone), a caller by phone.
    fn customer(&mut self) {
        let w = self.webhook;
        let s = &w.session;
        let phone = phone_number(w, self.settings);
        let sdk = origin(w).is_sdk();
        let app_user = if sdk { s.end_user.clone() } else { None };
        let mut lookup = Vec::new();
        if let Some(id) = &app_user {
            lookup.push(CustomerKey::ExternalId(id.clone()));
        }
        if let Some(email) = &s.crm.email {
            lookup.push(CustomerKey::Email(email.clone()));
        }
        if let Some(phone) = &phone {
            lookup.push(CustomerKey::Phone(phone.clone()));
        }
        if lookup.is_empty() {
            return;
        }
        let name = s
            .crm
            .name
            .clone()
            .or_else(|| phone.clone())
            .or_else(|| s.crm.email.clone())
            .or_else(|| app_user.as_ref().map(|id| format!("App user {id}")))
            .unwrap_or_else(|| "Unknown caller".into());
        let mut custom = Map::new();
        if self.settings.account_field {
            if let Some(id) = &app_user {
                custom.insert(ACCOUNT_FIELDS[0].name.into(), Value::String(id.clone()));
            }
        }
        let rule = if sdk {
            Rule::NewAppUserCreatesCustomer
        } else {
            Rule::NewPhoneNumberCreatesCustomer
        };
        self.push(
            rule,
            "customer",
            Operation::EnsureCustomer(CustomerSpec {
                lookup,
                name,
                external_id: app_user,
                email: s.crm.email.clone(),
                phone,
                custom,
                assign_to: None,
            }),
        );
    }

    /// Customer, conversation, the session's message, the phone note and mapped custom data:
    /// everything a session needs once written. `rule` says why the conversation is written.
    fn open(&mut self, rule: Rule) {
        let w = self.webhook;
        let s = &w.session;
        self.customer();
        let voicemail = w.kind == EventKind::Voicemail;
        let (policy, policy_rule) = if voicemail || w.kind == EventKind::Abandoned {
            (ConversationPolicy::AlwaysNew, rule)
        } else if let Some(of) = s.crm.callback_of {
            let rule = match of.reason {
                CallbackReason::HangUpAndCallBack => Rule::HangUpAndCallBackAppends,
                CallbackReason::CallBack => Rule::ShortCallCallBackAppends,
            };
            (
                ConversationPolicy::AppendToSessionOrLatestOpen {
                    session_id: of.session_id,
                },
                rule,
            )
        } else if let Some(id) = &s.conversation_id {
            (
                ConversationPolicy::Given {
                    conversation_id: id.clone(),
                },
                rule,
            )
        } else if s.direction == Direction::Outbound {
            (ConversationPolicy::AppendToLatestIfOpen, rule)
        } else {
            (ConversationPolicy::AppendToOpenMatching, rule)
        };
        let menu = menu_selection(w);
        let kind = session_type(w);
        let phone = phone_number(w, self.settings);
        let who = phone
            .clone()
            .or_else(|| s.crm.name.clone())
            .or_else(|| s.end_user.clone())
            .unwrap_or_else(|| "unknown".into());
        let custom = object([
            ("ccaiCallIdStr", Some(Value::String(s.platform_id.clone()))),
            ("ccaiLanguageStr", s.crm.lang.clone().map(Value::String)),
            ("ccaiMenuSelectionStr", menu.clone().map(Value::String)),
            (
                "ccaiChannelStr",
                Some(Value::String(channel_name(s.channel).into())),
            ),
            (
                "ccaiVoicemailStatusStr",
                voicemail.then(|| Value::String("new".into())),
            ),
        ]);
        self.push(
            policy_rule,
            "conversation",
            Operation::ResolveConversation(ConversationSpec {
                policy,
                external_id: format!("ccai-{}", s.reference()),
                name: format!("{kind} {who}"),
                channel: s.channel,
                direction: s.direction,
                menu: menu.clone(),
                custom,
                assign_to: None,
            }),
        );
        let mut message_custom = Map::new();
        if self.settings.record_fields {
            message_custom = object([
                (
                    "ccaiQueueNameStr",
                    s.crm.menu.as_ref().map(|m| Value::String(m.name.clone())),
                ),
                ("ccaiSessionTypeStr", Some(Value::String(kind.into()))),
                (
                    "ccaiSessionIdStr",
                    Some(Value::String(s.platform_id.clone())),
                ),
                ("ccaiFromPhoneNumberStr", phone.clone().map(Value::String)),
                (
                    "ccaiCustomerMenuSelectionStr",
                    menu.clone().map(Value::String),
                ),
                (
                    "ccaiEmailUsingInWebStr",
                    (origin(w) == Origin::WebSdk)
                        .then(|| s.crm.email.clone().map(Value::String))
                        .flatten(),
                ),
            ]);
        }
        let mut attachment = match &w.detail {
            Detail::Voicemail { recording_url } => Some(FileSource::Url {
                url: recording_url.clone(),
                name: format!("voicemail-{}.wav", s.platform_id),
                content_type: "audio/wav".into(),
            }),
            _ => None,
        };
        // A call's message is written once the call is over, with what the end brings (the
        // durations, the recording) in the same request; a chat's as soon as it comes in.
        let call = s.channel == Channel::Voice;
        if call && matches!(w.kind, EventKind::Ended | EventKind::RecordingReady) {
            if self.settings.record_fields {
                message_custom.extend(durations(s));
            }
            attachment = attachment.or_else(|| recording_file(s));
        }
        let message_now = !call || call_over(w.kind);
        let verb = match (voicemail, s.direction, s.channel) {
            (true, _, _) => "Voicemail from",
            (_, Direction::Outbound, _) => "Outbound call to",
            (_, _, Channel::Chat) => "Chat with",
            _ => "Call from",
        };
        if message_now {
            self.push(
                if self.settings.record_fields {
                    Rule::RecordFieldsFilled
                } else {
                    Rule::StandardDataOnCreation
                },
                "message",
                Operation::AddMessage(MessageSpec {
                    external_id: format!("ccai-{}-message", s.reference()),
                    channel: s.channel,
                    direction: match s.direction {
                        Direction::Inbound => Direction::Inbound,
                        Direction::Outbound => Direction::Outbound,
                    },
                    preview: format!("{verb} {who} ({kind}, session {})", s.platform_id),
                    custom: message_custom,
                    attachment,
                    primary: true,
                }),
            );
        }
        if let Some(phone) = phone {
            self.push(
                Rule::PhoneNumberNote,
                "phone-note",
                Operation::AddNote {
                    external_id: format!("ccai-{}-phone", s.reference()),
                    body: format!("Phone number: {phone}"),
                    attachment: None,
                },
            );
        }
        self.custom_data();
    }

    fn custom_data(&mut self) {
        let data = &self.webhook.session.crm.custom_data;
        let mut custom = Map::new();
        for mapping in &self.settings.mapping {
            let Some(datum) = data.iter().find(|d| d.key == mapping.sdk_key) else {
                continue;
            };
            // A value that does not fit its field is left out, not sent to fail the whole write.
            if let Ok(value) = custom_value(&mapping.field, datum) {
                custom.insert(mapping.field.clone(), value);
            }
        }
        if !custom.is_empty() {
            self.push(
                Rule::CustomDataMapped,
                "custom-data",
                Operation::UpdateConversation { custom },
            );
        }
    }

    fn assign(&mut self, rule: Rule, email: String) {
        // The conversation this event resolves is created assigned, when it is created.
        for planned in &mut self.out {
            if let Operation::ResolveConversation(spec) = &mut planned.op {
                spec.assign_to = Some(email.clone());
            }
        }
        self.push(
            rule,
            &format!("assign/{email}"),
            Operation::AssignConversation { agent_email: email },
        );
    }

    /// The answering (or placing) agent gets the conversation, and a customer this session
    /// created.
    fn assign_answering_agent(&mut self) {
        if let Some(email) = self.agent_email() {
            self.assign(Rule::ConversationAssignedToAnsweringAgent, email.clone());
            // A customer this event creates is created assigned, when it is created.
            for planned in &mut self.out {
                if let Operation::EnsureCustomer(spec) = &mut planned.op {
                    spec.assign_to = Some(email.clone());
                }
            }
            self.push(
                Rule::NewCustomerAssignedToAgent,
                "customer-assignment",
                Operation::AssignCustomer { agent_email: email },
            );
        }
    }

    /// Whether this session is written to Kustomer at all (an IVR call that was never answered
    /// nor abandoned is not; an abandoned one only when the org keeps them).
    fn opening_rule(&self) -> Option<Rule> {
        let w = self.webhook;
        let s = &w.session;
        match (origin(w), s.direction, w.kind) {
            (_, _, EventKind::Voicemail) => Some(Rule::VoicemailOwnConversation),
            (_, _, EventKind::Abandoned) if !self.settings.create_abandoned => None,
            (Origin::Ivr, Direction::Inbound, EventKind::Abandoned) => Some(Rule::AbandonedCall),
            (_, Direction::Outbound, _) => Some(Rule::OutboundCallNewWhenLatestNotOpen),
            (o, _, _) if o.is_sdk() => Some(Rule::MobileSdkCallOrChatArrives),
            (_, _, EventKind::Offered | EventKind::Missed) => None,
            _ => Some(Rule::IvrCallAnswered),
        }
    }
}

/// The operations one session event calls for, in the order they must run.
pub fn plan(webhook: &SessionWebhook, settings: &Settings) -> Vec<Planned> {
    let mut p = Planner {
        webhook,
        settings,
        out: Vec::new(),
    };
    let s = &webhook.session;
    let is_call = s.channel == Channel::Voice;
    use EventKind as K;
    match webhook.kind {
        // Nothing for the CRM: the call's own progress.
        K::Held | K::Resumed | K::Muted | K::Unmuted | K::Dtmf => {}
        // The call is over for its agent at the latest (a call transferred away has no end
        // here): its message, if no end wrote it.
        K::WrapUpEnded => {
            if is_call {
                // An IVR call is written only once answered.
                let unanswered_ivr = s.connected_at_ms.is_none() && origin(webhook) == Origin::Ivr;
                if let Some(rule) = p.opening_rule().filter(|_| !unanswered_ivr) {
                    p.open(rule);
                }
            }
        }
        // An offer is written only for SDK sessions (they are created when they come in).
        K::Offered | K::Missed => {
            if origin(webhook).is_sdk() {
                if let Some(rule) = p.opening_rule() {
                    p.open(rule);
                }
            }
        }
        K::Assigned | K::Connected => {
            if let Some(rule) = p.opening_rule() {
                p.open(rule);
                p.assign_answering_agent();
            }
        }
        K::Abandoned | K::Voicemail => {
            if let Some(rule) = p.opening_rule() {
                p.open(rule);
            }
        }
        K::Ended => {
            if let Some(rule) = p.opening_rule() {
                p.open(rule);
                if p.settings.record_fields {
                    let custom = durations(s);
                    if !custom.is_empty() {
                        // In the call's message when this event creates it (`carried_by`).
                        p.push_carried_by_message(
                            Rule::RecordFieldsFilled,
                            "durations",
                            Operation::UpdateMessage { custom },
                        );
                    }
                }
                if is_call {
                    recording(&mut p);
                }
            }
        }
        K::RecordingReady => {
            if let Some(rule) = p.opening_rule() {
                p.open(rule);
                recording(&mut p);
            }
        }
        K::Transferred => {
            if let Some(rule) = p.opening_rule() {
                p.open(rule);
                if let Detail::Transfer {
                    agent_email: Some(email),
                    ..
                } = &webhook.detail
                {
                    p.assign(Rule::TransferAssignsReceivingAgent, email.clone());
                }
            }
        }
        K::SmartAction => {
            if let (Some(rule), Detail::SmartAction(action)) = (p.opening_rule(), &webhook.detail) {
                p.open(rule);
                let event = &webhook.event_id;
                match &action.outcome {
                    SmartActionOutcome::Completed { result, files } => {
                        p.push(
                            Rule::SmartActionCompleted,
                            &format!("smart-action/{event}"),
                            Operation::AddNote {
                                external_id: format!("ccai-{}-sa-{event}", s.reference()),
                                body: format!("SmartAction {} completed: {result}", action.name),
                                attachment: None,
                            },
                        );
                        for (i, file) in files.iter().enumerate() {
                            p.push(
                                Rule::SmartActionCompleted,
                                &format!("smart-action/{event}/file/{i}"),
                                Operation::AddMessage(MessageSpec {
                                    external_id: format!("ccai-{}-sa-{event}-{i}", s.reference()),
                                    channel: s.channel,
                                    direction: Direction::Inbound,
                                    preview: format!(
                                        "{} shared through SmartAction {}",
                                        file.name, action.name
                                    ),
                                    custom: Map::new(),
                                    attachment: Some(FileSource::Url {
                                        url: file.url.clone(),
                                        name: file.name.clone(),
                                        content_type: file.content_type.clone(),
                                    }),
                                    primary: false,
                                }),
                            );
                        }
                    }
                    SmartActionOutcome::Failed { error } => p.push(
                        Rule::SmartActionFailedOnUserSide,
                        &format!("smart-action/{event}"),
                        Operation::AddNote {
                            external_id: format!("ccai-{}-sa-{event}", s.reference()),
                            body: format!("SmartAction {} failed: {error}", action.name),
                            attachment: None,
                        },
                    ),
                }
            }
        }
        K::Csat => {
            if let (Some(rule), Detail::Csat { rating, comment }) =
                (p.opening_rule(), &webhook.detail)
            {
                p.open(rule);
                let body = match comment {
                    Some(c) => format!("CSAT rating: {rating}/5. Comment: {c}"),
                    None => format!("CSAT rating: {rating}/5"),
                };
                p.push(
                    Rule::CsatRatingAdded,
                    "csat",
                    Operation::AddNote {
                        external_id: format!("ccai-{}-csat", s.reference()),
                        body,
                        attachment: None,
                    },
                );
                if p.settings.record_fields {
                    let custom = object([
                        ("ccaiCsatRatingNum", Some(Value::from(*rating))),
                        ("ccaiCsatCommentTxt", comment.clone().map(Value::String)),
                    ]);
                    p.push(
                        Rule::CsatRatingAdded,
                        "csat-fields",
                        Operation::UpdateMessage { custom },
                    );
                }
            }
        }
        K::TranscriptReady => {
            if let (Some(rule), Detail::Transcript { text }) = (p.opening_rule(), &webhook.detail) {
                p.open(rule);
                p.push(
                    Rule::ChatTranscriptAttached,
                    "transcript",
                    Operation::AddNote {
                        external_id: format!("ccai-{}-transcript", s.reference()),
                        body: format!("Chat transcript (session {})", s.platform_id),
                        attachment: Some(FileSource::Inline {
                            name: format!("chat-{}-transcript.txt", s.platform_id),
                            content_type: "text/plain".into(),
                            text: text.clone(),
                        }),
                    },
                );
            }
        }
        K::VoicemailRead | K::VoicemailDismissed | K::VoicemailCalledBack => {
            let (status, words) = match webhook.kind {
                K::VoicemailRead => ("read", "read"),
                K::VoicemailDismissed => ("dismissed", "dismissed"),
                _ => ("called_back", "called back"),
            };
            let by = p
                .agent_email()
                .map(|e| format!(" by {e}"))
                .unwrap_or_default();
            p.push(
                Rule::VoicemailReadDismissedCalledBack,
                &format!("voicemail-{status}"),
                Operation::UpdateConversation {
                    custom: object([(
                        "ccaiVoicemailStatusStr",
                        Some(Value::String(status.into())),
                    )]),
                },
            );
            p.push(
                Rule::VoicemailReadDismissedCalledBack,
                &format!("voicemail-{status}-note"),
                Operation::AddNote {
                    external_id: format!("ccai-{}-voicemail-{status}", s.reference()),
                    body: format!("Voicemail {words}{by}"),
                    attachment: None,
                },
            );
        }
    }
    p.out
}

/// The recording in a message of its own, unless the call's message carries it (the message
/// created by the same event).
fn recording(p: &mut Planner<'_>) {
    let s = &p.webhook.session;
    if let Some(file) = recording_file(s) {
        let id = s.platform_id.clone();
        let reference = s.reference();
        p.push_carried_by_message(
            Rule::RecordingAttachedWhenCallEnds,
            "recording",
            Operation::AddMessage(MessageSpec {
                external_id: format!("ccai-{reference}-recording"),
                channel: Channel::Voice,
                direction: s.direction,
                preview: format!("Call recording (session {id})"),
                custom: Map::new(),
                attachment: Some(file),
                primary: false,
            }),
        );
    }
}

/// The call's recording, when the platform has one.
fn recording_file(s: &Session) -> Option<FileSource> {
    s.crm.recording_url.as_ref().map(|url| FileSource::Url {
        url: url.clone(),
        name: format!("call-{}.wav", s.platform_id),
        content_type: "audio/wav".into(),
    })
}

/// The record fields known when a call ends.
fn durations(s: &Session) -> Map<String, Value> {
    let seconds = |v: Option<u32>| v.map(|v| Value::from(u64::from(v)));
    object([
        ("ccaiCallDurationNum", seconds(s.crm.call_seconds)),
        ("ccaiHoldTimeNum", seconds(s.crm.hold_seconds)),
        ("ccaiWaitTimeNum", seconds(s.crm.queue_seconds)),
    ])
}

/// Whether a call is over at this event (or the event comes after it): its message is
/// written then. An answer, a transfer or a SmartAction happen during the call.
fn call_over(kind: EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Offered
            | EventKind::Assigned
            | EventKind::Connected
            | EventKind::Transferred
            | EventKind::SmartAction
    )
}

/// A conversation of the customer, as the gateway read it from Kustomer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationSummary {
    pub id: String,
    /// `open`, `snoozed` or `done`.
    pub status: String,
    pub created_at_ms: i64,
    pub external_id: Option<String>,
    pub menu: Option<String>,
    pub channel: Option<String>,
    /// The Kustomer users it is assigned to.
    pub assigned_users: Vec<String>,
}

impl ConversationSummary {
    fn is_open(&self) -> bool {
        self.status.eq_ignore_ascii_case("open")
    }
}

/// What to do for a [`ConversationSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Write into this conversation.
    Existing(String),
    /// Create one.
    Create,
}

/// Chooses the conversation for `spec` among the customer's `conversations`. `previous` is the
/// conversation of the session a call-back follows, when known. A conversation this session
/// already created (its external id) always wins: a retry after a crash must not create another.
pub fn choose_conversation(
    spec: &ConversationSpec,
    conversations: &[ConversationSummary],
    previous: Option<&ConversationSummary>,
) -> Choice {
    if let Some(own) = conversations
        .iter()
        .find(|c| c.external_id.as_deref() == Some(spec.external_id.as_str()))
    {
        return Choice::Existing(own.id.clone());
    }
    let latest = conversations.iter().max_by_key(|c| c.created_at_ms);
    let latest_open = || {
        latest
            .filter(|c| c.is_open())
            .map_or(Choice::Create, |c| Choice::Existing(c.id.clone()))
    };
    match &spec.policy {
        ConversationPolicy::AlwaysNew => Choice::Create,
        ConversationPolicy::Given { conversation_id } => Choice::Existing(conversation_id.clone()),
        ConversationPolicy::AppendToLatestIfOpen => latest_open(),
        ConversationPolicy::AppendToSessionOrLatestOpen { .. } => match previous {
            Some(c) if c.is_open() => Choice::Existing(c.id.clone()),
            _ => latest_open(),
        },
        ConversationPolicy::AppendToOpenMatching => {
            let channel = channel_name(spec.channel);
            conversations
                .iter()
                .filter(|c| {
                    c.is_open() && c.channel.as_deref() == Some(channel) && c.menu == spec.menu
                })
                .max_by_key(|c| c.created_at_ms)
                .map_or(Choice::Create, |c| Choice::Existing(c.id.clone()))
        }
    }
}

#[cfg(test)]
#[path = "crm_tests.rs"]
mod tests;
