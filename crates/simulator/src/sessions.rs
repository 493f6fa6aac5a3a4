//! Calls and chats as the platform runs them, with the platform's status rules, the session
//! events they emit, and the Manager API's call and chat resources that describe them.
//!
//! Session events follow the documented External Session Events lifecycle (item `state`
//! `connected`/`disconnected`, participants `external` and `agent` with `connected`,
//! `accepted`, `disconnected`, `dispositionSubmitted`): started and routing when a call or chat
//! comes in, assigned and active when the agent answers (or places the call), ended when it
//! ends, final when wrap-up is done. What the platform does not document (the offer ringing,
//! a missed offer, hold, mute, DTMF, transfer, SmartActions, CSAT comments, transcripts,
//! voicemail read/dismissed/called back) is sent as the simulator's **extension**, and the
//! Manager resources carry the scenario's undocumented facts (SDK custom data, the caller's
//! email and name, which call a call-back follows) under `x_extension`. Status rules:
//!
//! - answer / customer connects: In-call (-7), In-chat (-8) for a chat;
//! - end (or transfer): Wrap-up (-6); wrap-up done (`POST /_sim/calls/{id}/wrap_up_done`, or
//!   after `--wrap-up-seconds`): the agent's next status if any, else Available;
//! - a missed offer: Missed Call (-5).
//!
//! Three ways in: the scenario driver (`POST /_sim/scenarios`), the customer's and platform's
//! side (`POST /_sim/calls/{id}/{answer|connect|miss|customer_hang_up|wrap_up_done}`), and the agent's
//! call controls, a simulator-only extension of the API (`/ext/call-control/v1/...`), which the
//! public CCAI API does not have (`--call-controls false` makes them 404 like it).

use adapter_core::{agent_events::Direction, ccai_events::Stage, iso_time::format_utc_ms};
use axum::{
    extract::{rejection::JsonRejection, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{
    ccai::{message, Ccai, CcaiData},
    webhooks::Endpoint,
};

/// The agent controls the extension offers, as `GET /ext/call-control/v1/capabilities` lists them.
pub const CONTROLS: [&str; 10] = [
    "answer",
    "hold",
    "resume",
    "mute",
    "unmute",
    "end",
    "transfer",
    "dtmf",
    "hang_up_and_call_back",
    "call_back",
];

const IN_CALL: i64 = -7;
const IN_CHAT: i64 = -8;
const WRAP_UP: i64 = -6;
const MISSED_CALL: i64 = -5;
const AVAILABLE: i64 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionType {
    Call,
    Chat,
}

impl SessionType {
    fn as_str(self) -> &'static str {
        match self {
            SessionType::Call => "call",
            SessionType::Chat => "chat",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Outbound, waiting for the agent to pick an outbound number.
    Selecting,
    /// Outbound, dialing the customer.
    Assigned,
    /// Inbound, offered to the agent.
    Ringing,
    Connected,
    OnHold,
    WrapUp,
    Finished,
    Missed,
    Abandoned,
    Voicemail,
}

impl SessionStatus {
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SessionStatus::Selecting
                | SessionStatus::Assigned
                | SessionStatus::Ringing
                | SessionStatus::Connected
                | SessionStatus::OnHold
                | SessionStatus::WrapUp
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Selecting => "selecting",
            SessionStatus::Assigned => "assigned",
            SessionStatus::Ringing => "ringing",
            SessionStatus::Connected => "connected",
            SessionStatus::OnHold => "on_hold",
            SessionStatus::WrapUp => "wrap_up",
            SessionStatus::Finished => "finished",
            SessionStatus::Missed => "missed",
            SessionStatus::Abandoned => "abandoned",
            SessionStatus::Voicemail => "voicemail",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SmartActionResult {
    pub name: String,
    pub result: String,
}

/// A call or chat.
#[derive(Clone, Debug, Serialize)]
pub struct SimSession {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: SessionType,
    pub direction: Direction,
    pub status: SessionStatus,
    pub agent_id: Option<i64>,
    /// The customer's number (a call) or identifier (a chat).
    pub number: Option<String>,
    pub conversation_id: Option<String>,
    pub created_at_ms: i64,
    pub connected_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub muted: bool,
    pub end_reason: Option<String>,
    /// Every DTMF digit sent, in order.
    pub dtmf: String,
    pub transferred_to: Option<String>,
    pub recording_url: Option<String>,
    pub rating: Option<u8>,
    pub smart_actions: Vec<SmartActionResult>,
    /// More session fields the platform sends for the CRM sync (origin, selected_menu, lang,
    /// custom_data, …), given by the scenario; merged into every webhook's `session`.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
    /// Whether the call is recorded (its recording is ready when it ends).
    pub recording: bool,
    /// Whether an agent took it (answered, or placed it): the agent is a participant.
    pub accepted: bool,
}

impl SimSession {
    fn new(
        id: i64,
        kind: SessionType,
        direction: Direction,
        status: SessionStatus,
        agent_id: Option<i64>,
    ) -> Self {
        SimSession {
            id,
            kind,
            direction,
            status,
            agent_id,
            number: None,
            conversation_id: None,
            created_at_ms: now_ms(),
            connected_at_ms: None,
            ended_at_ms: None,
            muted: false,
            end_reason: None,
            dtmf: String::new(),
            transferred_to: None,
            recording_url: None,
            rating: None,
            smart_actions: Vec::new(),
            extra: serde_json::Map::new(),
            recording: false,
            accepted: false,
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Why an action was refused: the HTTP status and the platform-style message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    fn conflict(message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        message(self.status, &self.message)
    }
}

/// Something that happens to a session: the agent's controls, then the customer's and the
/// platform's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Answer,
    Hold,
    Resume,
    Mute,
    Unmute,
    End,
    Transfer(String),
    Dtmf(String),
    HangUpAndCallBack,
    CallBack,
    /// The customer answers an outbound call.
    Connect,
    /// The agent let an offer ring out.
    Miss,
    /// The customer hangs up (before being served, it is abandoned).
    CustomerHangUp,
    WrapUpDone,
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Answer => "answer",
            Action::Hold => "hold",
            Action::Resume => "resume",
            Action::Mute => "mute",
            Action::Unmute => "unmute",
            Action::End => "end",
            Action::Transfer(_) => "transfer",
            Action::Dtmf(_) => "dtmf",
            Action::HangUpAndCallBack => "hang_up_and_call_back",
            Action::CallBack => "call_back",
            Action::Connect => "connect",
            Action::Miss => "miss",
            Action::CustomerHangUp => "customer_hang_up",
            Action::WrapUpDone => "wrap_up_done",
        }
    }
}

fn valid_digits(digits: &str) -> bool {
    (1..=32).contains(&digits.len())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

impl CcaiData {
    fn session_index(&self, id: i64) -> Option<usize> {
        self.sessions.iter().position(|s| s.id == id)
    }

    fn new_session_id(&mut self) -> i64 {
        self.next_call_id += 1;
        self.next_call_id
    }

    fn agent_status(&self, agent_id: i64) -> Option<i64> {
        self.agents
            .iter()
            .find(|a| a.id == agent_id)
            .map(|a| a.status_id)
    }

    /// Puts the agent in a system status (the next status waits).
    fn set_system_status(&mut self, agent_id: Option<i64>, status_id: i64) {
        if let Some(agent) = self.agents.iter_mut().find(|a| Some(a.id) == agent_id) {
            agent.status_id = status_id;
        }
    }

    /// Wrap-up is over: the next status, else Available.
    fn leave_wrap_up(&mut self, agent_id: Option<i64>) {
        if let Some(agent) = self.agents.iter_mut().find(|a| Some(a.id) == agent_id) {
            agent.status_id = agent.next_status_id.take().unwrap_or(AVAILABLE);
        }
    }

    fn live_session_of(&self, agent_id: i64) -> Option<&SimSession> {
        self.sessions
            .iter()
            .rev()
            .find(|s| s.agent_id == Some(agent_id) && s.status.is_live())
    }

    /// The session events for `event` on the session at `index`, queued for delivery: the
    /// documented lifecycle events it implies, and the extension's for what is not documented.
    fn emit(&self, ccai: &Ccai, index: usize, event: &str, extra: Value) {
        if !ccai.webhooks.enabled() {
            return;
        }
        let Some(session) = self.sessions.get(index) else {
            return;
        };
        match event {
            "offered" => {
                self.documented(ccai, index, Stage::Started);
                self.documented(ccai, index, Stage::Routing);
                self.extension(ccai, index, event, extra);
            }
            "assigned" => self.documented(ccai, index, Stage::Assigned),
            "connected" => {
                if session.direction == Direction::Inbound {
                    self.documented(ccai, index, Stage::Assigned);
                }
                self.documented(ccai, index, Stage::Active);
            }
            "ended" => {
                self.documented(ccai, index, Stage::Ended);
                // A call hung up for a call-back has no wrap-up: it is final at once.
                if session.status == SessionStatus::Finished {
                    self.documented(ccai, index, Stage::Final);
                }
            }
            "transferred" => {
                self.extension(ccai, index, event, extra);
                self.documented(ccai, index, Stage::Ended);
            }
            "abandoned" => self.documented(ccai, index, Stage::Ended),
            "voicemail" => {
                self.documented(ccai, index, Stage::Started);
                self.documented(ccai, index, Stage::Routing);
                self.documented(ccai, index, Stage::Ended);
            }
            "wrap_up_ended" => self.documented(ccai, index, Stage::Final),
            _ => self.extension(ccai, index, event, extra),
        }
    }

    /// One documented External Session Event for the session at `index` at `stage`, its
    /// `item` enriched with what the session has by then.
    fn documented(&self, ccai: &Ccai, index: usize, stage: Stage) {
        let Some(session) = self.sessions.get(index) else {
            return;
        };
        let agent = session
            .agent_id
            .filter(|_| session.accepted)
            .and_then(|id| self.agents.iter().find(|a| a.id == id));
        let (external, agent_status, state) = match stage {
            Stage::Unknown | Stage::Started | Stage::Routing => ("connected", None, "connected"),
            Stage::Assigned => ("connected", Some("accepted"), "connected"),
            Stage::Active => ("connected", Some("connected"), "connected"),
            Stage::Ended => ("disconnected", Some("disconnected"), "disconnected"),
            Stage::Final => ("disconnected", Some("dispositionSubmitted"), "disconnected"),
        };
        let mut participants = vec![json!({"type": "external", "status": external})];
        if let (Some(agent), Some(status)) = (agent, agent_status) {
            participants.push(json!({
                "type": "agent", "status": status, "id": agent.id,
                "name": format!("{} {}", agent.first_name, agent.last_name),
            }));
        }
        let id_key = match session.kind {
            SessionType::Call => "call_id",
            SessionType::Chat => "chat_id",
        };
        let mut item = json!({
            id_key: session.id,
            "state": state,
            "dn": session.number,
            "participants": participants,
        });
        if stage >= Stage::Routing {
            item["queue_path_names"] = json!(queue_path(session));
            if stage == Stage::Routing {
                item["initiator"] = json!("virtual_agent_1");
            }
        }
        if let Some(at) = session.connected_at_ms.filter(|_| stage >= Stage::Active) {
            item["connected_at"] = json!(format_utc_ms(at));
        }
        if stage >= Stage::Ended {
            item["ends_at"] = json!(format_utc_ms(session.ended_at_ms.unwrap_or_else(now_ms)));
            item["initiator"] = match agent {
                Some(agent) if session.end_reason.is_none() => json!(format!("agent_{}", agent.id)),
                _ => json!("end_user"),
            };
        }
        if stage == Stage::Final {
            item["dispositions"] =
                json!({"code": "resolved", "custom_code_id": null, "note": null});
        }
        let event_id = ccai.webhooks.next_event_id();
        let endpoint = match session.kind {
            SessionType::Call => Endpoint::Calls,
            SessionType::Chat => Endpoint::Chats,
        };
        ccai.webhooks.enqueue(
            endpoint,
            event_id.clone(),
            format!("{}.{}", session.kind.as_str(), stage.as_str()),
            agent.map(|a| a.id),
            Some(session.id),
            json!({"event_id": event_id, "timestamp": now_ms(), "item": item}),
        );
    }

    /// One extension event (not a documented platform shape), in the gateway's own event shape.
    fn extension(&self, ccai: &Ccai, index: usize, event: &str, extra: Value) {
        let Some(session) = self.sessions.get(index) else {
            return;
        };
        let event_id = ccai.webhooks.next_event_id();
        let agent = session
            .agent_id
            .and_then(|id| self.agents.iter().find(|a| a.id == id))
            .map(|a| {
                json!({
                    "id": a.id, "email": a.email,
                    "status": self.status_ref(a.status_id),
                    "next_status": a.next_status_id.map(|id| self.status_ref(id)),
                })
            });
        let event_type = format!("{}.{event}", session.kind.as_str());
        let mut payload = json!({
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": format_utc_ms(now_ms()),
            "session": {
                "type": session.kind.as_str(),
                "id": session.id,
                "status": session.status.as_str(),
                "direction": session.direction,
                "end_user": {"identifier": session.number},
                "out_ticket_id": session.conversation_id,
                "connected_at": session.connected_at_ms.map(format_utc_ms),
                "ends_at": session.ended_at_ms.map(format_utc_ms),
                "muted": session.muted,
                "end_reason": session.end_reason,
            },
            "agent": agent,
        });
        if let Some(target) = payload["session"].as_object_mut() {
            let identifier = target["end_user"]["identifier"].clone();
            for (key, value) in &session.extra {
                target.insert(key.clone(), value.clone());
            }
            // The scenario's end user adds to the identifier, it does not replace it.
            if target["end_user"]["identifier"].is_null() && !identifier.is_null() {
                target["end_user"]["identifier"] = identifier;
            }
        }
        if let (Some(body), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            body.extend(extra);
        }
        ccai.webhooks.enqueue(
            Endpoint::Extension,
            event_id,
            format!("extension.{event_type}"),
            session.agent_id,
            Some(session.id),
            payload,
        );
    }

    /// Ends the conversation: wrap-up for the agent, ended on its own after `ccai.wrap_up`.
    fn enter_wrap_up(&mut self, ccai: &Ccai, index: usize, reason: Option<String>) {
        let now = now_ms();
        let (id, agent_id) = match self.sessions.get_mut(index) {
            Some(session) => {
                session.status = SessionStatus::WrapUp;
                session.ended_at_ms = Some(now);
                session.end_reason = reason;
                if session.recording && session.kind == SessionType::Call {
                    session.recording_url = Some(format!(
                        "{}/_sim/recordings/{}.wav",
                        ccai.api_url, session.id
                    ));
                }
                (session.id, session.agent_id)
            }
            None => return,
        };
        self.set_system_status(agent_id, WRAP_UP);
        if !ccai.wrap_up.is_zero() {
            let ccai = ccai.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ccai.wrap_up).await;
                let mut data = ccai.data();
                // Refused when the agent already ended wrap-up: nothing to do then.
                let _ = data.act(&ccai, id, None, Action::WrapUpDone);
            });
        }
    }

    /// A call back after `previous` (the widget's "Hang up and call back" or "Call back"),
    /// carrying which call it follows and the previous call's CRM fields.
    fn place_callback(&mut self, ccai: &Ccai, previous: &SimSession, reason: &str) -> usize {
        let id = self.new_session_id();
        let mut session = SimSession::new(
            id,
            SessionType::Call,
            Direction::Outbound,
            SessionStatus::Assigned,
            previous.agent_id,
        );
        session.accepted = true;
        session.number = previous.number.clone();
        session.conversation_id = previous.conversation_id.clone();
        session.recording = previous.recording;
        session.extra = previous.extra.clone();
        session.extra.remove("origin");
        session.extra.insert(
            "callback_of".into(),
            json!({"session_id": previous.id, "reason": reason}),
        );
        self.sessions.push(session);
        let index = self.sessions.len() - 1;
        self.emit(ccai, index, "assigned", json!({}));
        index
    }

    /// Applies `action` to session `id`; `agent_id` (the agent's controls) must own it.
    /// Returns the session the action leaves the agent with (a new one for the call-back
    /// actions).
    pub fn act(
        &mut self,
        ccai: &Ccai,
        id: i64,
        agent_id: Option<i64>,
        action: Action,
    ) -> Result<SimSession, Refusal> {
        let index = self
            .session_index(id)
            .ok_or_else(|| Refusal::not_found("Call not found"))?;
        let session = self.sessions[index].clone();
        if let Some(agent_id) = agent_id {
            if session.agent_id != Some(agent_id) {
                return Err(Refusal::conflict(format!(
                    "{} {id} is not assigned to agent {agent_id}",
                    session.kind.as_str()
                )));
            }
        }
        use SessionStatus as S;
        let voice = session.kind == SessionType::Call;
        let refuse = || {
            Refusal::conflict(format!(
                "Can't {} a {} that is {}",
                action.name().replace('_', " "),
                session.kind.as_str(),
                session.status.as_str().replace('_', " ")
            ))
        };
        let mut result_index = index;
        match (&action, session.status) {
            (Action::Answer, S::Ringing) => {
                let s = &mut self.sessions[index];
                s.accepted = true;
                s.status = S::Connected;
                s.connected_at_ms = Some(now_ms());
                let busy = if voice { IN_CALL } else { IN_CHAT };
                self.set_system_status(session.agent_id, busy);
                self.emit(ccai, index, "connected", json!({}));
            }
            (Action::Connect, S::Assigned | S::Selecting) if voice => {
                let s = &mut self.sessions[index];
                s.status = S::Connected;
                s.connected_at_ms = Some(now_ms());
                self.set_system_status(session.agent_id, IN_CALL);
                self.emit(ccai, index, "connected", json!({}));
            }
            (Action::Hold, S::Connected) if voice => {
                self.sessions[index].status = S::OnHold;
                self.emit(ccai, index, "held", json!({}));
            }
            (Action::Resume, S::OnHold) if voice => {
                self.sessions[index].status = S::Connected;
                self.emit(ccai, index, "resumed", json!({}));
            }
            (Action::Mute, S::Connected | S::OnHold) if voice && !session.muted => {
                self.sessions[index].muted = true;
                self.emit(ccai, index, "muted", json!({}));
            }
            (Action::Unmute, S::Connected | S::OnHold) if voice && session.muted => {
                self.sessions[index].muted = false;
                self.emit(ccai, index, "unmuted", json!({}));
            }
            (Action::End, S::Assigned | S::Selecting | S::Connected | S::OnHold)
            | (Action::CustomerHangUp, S::Assigned | S::Connected | S::OnHold) => {
                let reason = (session.connected_at_ms.is_none()).then(|| "not_answered".into());
                self.enter_wrap_up(ccai, index, reason);
                self.emit(ccai, index, "ended", json!({}));
            }
            (Action::CustomerHangUp, S::Ringing) => {
                let s = &mut self.sessions[index];
                s.status = S::Abandoned;
                s.ended_at_ms = Some(now_ms());
                s.end_reason = Some("abandoned".into());
                self.emit(ccai, index, "abandoned", json!({}));
            }
            (Action::Miss, S::Ringing) => {
                let s = &mut self.sessions[index];
                s.status = S::Missed;
                s.ended_at_ms = Some(now_ms());
                s.end_reason = Some("missed".into());
                self.set_system_status(session.agent_id, MISSED_CALL);
                self.emit(ccai, index, "missed", json!({}));
            }
            (Action::Transfer(target), S::Connected | S::OnHold) if voice => {
                let target = target.trim();
                if target.is_empty() || target.chars().count() > 100 {
                    return Err(Refusal::bad_request("target must be 1 to 100 characters"));
                }
                self.sessions[index].transferred_to = Some(target.to_owned());
                self.enter_wrap_up(ccai, index, Some("transferred".into()));
                // A transfer to an agent names the agent (by email) for the CRM's assignment.
                let agent_email = target.contains('@').then(|| target.to_lowercase());
                self.emit(
                    ccai,
                    index,
                    "transferred",
                    json!({"transfer": {"target": target, "agent_email": agent_email}}),
                );
            }
            (Action::Dtmf(digits), S::Connected) if voice => {
                if !valid_digits(digits) {
                    return Err(Refusal::bad_request(
                        "digits must be 1 to 32 of 0-9, * and #",
                    ));
                }
                self.sessions[index].dtmf.push_str(digits);
                self.emit(ccai, index, "dtmf", json!({"dtmf": {"digits": digits}}));
            }
            (Action::HangUpAndCallBack, S::Connected | S::OnHold)
                if voice && session.number.is_some() =>
            {
                let s = &mut self.sessions[index];
                s.status = S::Finished;
                s.ended_at_ms = Some(now_ms());
                s.end_reason = Some("called_back".into());
                if let Some(s) = self.sessions.get_mut(index) {
                    if s.recording {
                        s.recording_url =
                            Some(format!("{}/_sim/recordings/{}.wav", ccai.api_url, s.id));
                    }
                }
                self.emit(ccai, index, "ended", json!({}));
                // The agent stays In-call: the new call is dialing.
                result_index = self.place_callback(ccai, &session, "hang_up_and_call_back");
            }
            (Action::CallBack, S::Finished) if voice && session.number.is_some() => {
                let short = session
                    .connected_at_ms
                    .zip(session.ended_at_ms)
                    .is_some_and(|(start, end)| end - start < 10_000);
                if !short {
                    return Err(Refusal::conflict(
                        "Call back is offered only after a call under 10 seconds",
                    ));
                }
                if let Some(live) = session.agent_id.and_then(|a| self.live_session_of(a)) {
                    return Err(Refusal::conflict(format!(
                        "The agent is busy with {} {}",
                        live.kind.as_str(),
                        live.id
                    )));
                }
                result_index = self.place_callback(ccai, &session, "call_back");
            }
            (Action::WrapUpDone, S::WrapUp) => {
                self.sessions[index].status = S::Finished;
                self.leave_wrap_up(session.agent_id);
                self.emit(ccai, index, "wrap_up_ended", json!({}));
            }
            _ => return Err(refuse()),
        }
        Ok(self.sessions[result_index].clone())
    }

    /// An outbound call placed through `POST /apps/api/v1/calls` becomes a session.
    pub fn outbound_placed(
        &mut self,
        ccai: &Ccai,
        call_id: i64,
        agent_id: i64,
        number: Option<String>,
        conversation_id: Option<String>,
        selecting: bool,
    ) {
        let status = if selecting {
            SessionStatus::Selecting
        } else {
            SessionStatus::Assigned
        };
        let mut session = SimSession::new(
            call_id,
            SessionType::Call,
            Direction::Outbound,
            status,
            Some(agent_id),
        );
        session.accepted = true;
        session.number = number;
        session.conversation_id = conversation_id;
        self.sessions.push(session);
        self.emit(ccai, self.sessions.len() - 1, "assigned", json!({}));
    }

    /// The id the next placed call gets.
    pub fn take_call_id(&mut self) -> i64 {
        self.new_session_id()
    }
}

/// `POST /_sim/scenarios`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    kind: ScenarioKind,
    #[serde(default = "default_agent")]
    agent_id: i64,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
    /// CSAT: 1 to 5 (5 by default).
    #[serde(default)]
    rating: Option<i64>,
    /// SmartAction: its name and result.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    result: Option<String>,
    /// More session fields (origin, selected_menu, menu_path, lang, end_user, custom_data,
    /// queue_duration, hold_duration), an object sent on every webhook of the session.
    #[serde(default)]
    session: Option<serde_json::Map<String, Value>>,
    /// Record the call: its recording is ready when it ends.
    #[serde(default)]
    recording: bool,
    /// A SmartAction that failed on the user's side, with this error.
    #[serde(default)]
    error: Option<String>,
    /// Files a SmartAction shared: `[{name, url, content_type}]`.
    #[serde(default)]
    files: Option<Vec<Value>>,
    /// A CSAT comment, or a chat transcript's text.
    #[serde(default)]
    text: Option<String>,
    /// The session a `transcript` or voicemail event is about (default: the agent's latest).
    #[serde(default)]
    session_id: Option<i64>,
}

fn default_agent() -> i64 {
    102
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    InboundCall,
    Chat,
    Voicemail,
    Abandoned,
    SmartAction,
    Csat,
    /// The chat's transcript is ready.
    Transcript,
    VoicemailRead,
    VoicemailDismissed,
    VoicemailCalledBack,
}

const DEFAULT_NUMBER: &str = "+14155552671";

fn bounded(value: Option<String>, field: &str, max: usize) -> Result<Option<String>, Refusal> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max => Err(Refusal::bad_request(format!(
            "{field} must be at most {max} characters"
        ))),
        other => Ok(other),
    }
}

impl CcaiData {
    pub fn run_scenario(&mut self, ccai: &Ccai, scenario: Scenario) -> Result<SimSession, Refusal> {
        let agent_id = scenario.agent_id;
        let status = self
            .agent_status(agent_id)
            .ok_or_else(|| Refusal::not_found("Agent not found"))?;
        let number = bounded(scenario.number, "number", 32)?.or(Some(DEFAULT_NUMBER.into()));
        let conversation_id = bounded(scenario.conversation_id, "conversation_id", 100)?;
        let extra = scenario.session.clone().unwrap_or_default();
        if serde_json::to_string(&extra).map_or(0, |t| t.len()) > 16 * 1024 {
            return Err(Refusal::bad_request(
                "session must be at most 16 KiB of JSON",
            ));
        }
        let recording = scenario.recording;
        let offer = |data: &mut CcaiData, kind: SessionType| -> Result<usize, Refusal> {
            let routable = status == AVAILABLE || (kind == SessionType::Chat && status == IN_CHAT);
            if !routable {
                return Err(Refusal::conflict(format!(
                    "Agent {agent_id} is not Available: work is offered only to Available agents"
                )));
            }
            let id = data.new_session_id();
            let mut session = SimSession::new(
                id,
                kind,
                Direction::Inbound,
                SessionStatus::Ringing,
                Some(agent_id),
            );
            session.number = number.clone();
            session.conversation_id = conversation_id.clone();
            session.extra = extra.clone();
            session.recording = recording;
            data.sessions.push(session);
            let index = data.sessions.len() - 1;
            data.emit(ccai, index, "offered", json!({}));
            Ok(index)
        };
        let index = match scenario.kind {
            ScenarioKind::InboundCall => offer(self, SessionType::Call)?,
            ScenarioKind::Chat => offer(self, SessionType::Chat)?,
            ScenarioKind::Abandoned => {
                let index = offer(self, SessionType::Call)?;
                let id = self.sessions[index].id;
                self.act(ccai, id, None, Action::CustomerHangUp)?;
                index
            }
            ScenarioKind::Voicemail => {
                let id = self.new_session_id();
                let mut session = SimSession::new(
                    id,
                    SessionType::Call,
                    Direction::Inbound,
                    SessionStatus::Voicemail,
                    Some(agent_id),
                );
                session.number = number;
                session.conversation_id = conversation_id;
                session.extra = extra;
                session.ended_at_ms = Some(now_ms());
                session.end_reason = Some("voicemail".into());
                let url = format!("{}/_sim/recordings/{id}.wav", ccai.api_url);
                session.recording_url = Some(url.clone());
                self.sessions.push(session);
                let index = self.sessions.len() - 1;
                let _ = url;
                self.emit(ccai, index, "voicemail", json!({}));
                index
            }
            ScenarioKind::SmartAction => {
                let index = self.latest_session_of(agent_id).ok_or_else(|| {
                    Refusal::conflict(format!(
                        "Agent {agent_id} has no call or chat for a SmartAction"
                    ))
                })?;
                let name = bounded(scenario.name, "name", 100)?
                    .unwrap_or_else(|| "Get Verification".into());
                let result =
                    bounded(scenario.result, "result", 256)?.unwrap_or_else(|| "verified".into());
                self.sessions[index].smart_actions.push(SmartActionResult {
                    name: name.clone(),
                    result: result.clone(),
                });
                let detail = match bounded(scenario.error, "error", 256)? {
                    Some(error) => json!({"name": name, "status": "failed", "error": error}),
                    None => json!({"name": name, "status": "completed", "result": result,
                        "files": scenario.files.unwrap_or_default()}),
                };
                self.emit(
                    ccai,
                    index,
                    "smart_action",
                    json!({ "smart_action": detail }),
                );
                index
            }
            ScenarioKind::Csat => {
                let rating = scenario.rating.unwrap_or(5);
                let rating = u8::try_from(rating)
                    .ok()
                    .filter(|r| (1..=5).contains(r))
                    .ok_or_else(|| Refusal::bad_request("rating must be 1 to 5"))?;
                let index = self.latest_session_of(agent_id).ok_or_else(|| {
                    Refusal::conflict(format!("Agent {agent_id} has no call or chat to rate"))
                })?;
                self.sessions[index].rating = Some(rating);
                let comment = bounded(scenario.text, "text", 2000)?;
                self.emit(
                    ccai,
                    index,
                    "csat",
                    json!({"csat": {"rating": rating, "comment": comment}}),
                );
                index
            }
            ScenarioKind::Transcript => {
                let index =
                    self.scenario_session(agent_id, scenario.session_id, SessionType::Chat)?;
                let text = bounded(scenario.text, "text", 60_000)?.unwrap_or_else(|| {
                    "Agent: Hello, how can I help?\nCustomer: My order is late.".into()
                });
                self.emit(
                    ccai,
                    index,
                    "transcript_ready",
                    json!({"transcript": {"text": text}}),
                );
                index
            }
            ScenarioKind::VoicemailRead
            | ScenarioKind::VoicemailDismissed
            | ScenarioKind::VoicemailCalledBack => {
                let index =
                    self.scenario_session(agent_id, scenario.session_id, SessionType::Call)?;
                if self.sessions[index].status != SessionStatus::Voicemail {
                    return Err(Refusal::conflict("That session is not a voicemail"));
                }
                let event = match scenario.kind {
                    ScenarioKind::VoicemailRead => "voicemail_read",
                    ScenarioKind::VoicemailDismissed => "voicemail_dismissed",
                    _ => "voicemail_called_back",
                };
                self.emit(ccai, index, event, json!({}));
                index
            }
        };
        Ok(self.sessions[index].clone())
    }

    /// The session `id` when given (of that kind), else the agent's latest of that kind.
    fn scenario_session(
        &self,
        agent_id: i64,
        id: Option<i64>,
        kind: SessionType,
    ) -> Result<usize, Refusal> {
        let found = match id {
            Some(id) => self
                .sessions
                .iter()
                .position(|s| s.id == id && s.kind == kind),
            None => self
                .sessions
                .iter()
                .rposition(|s| s.agent_id == Some(agent_id) && s.kind == kind),
        };
        found.ok_or_else(|| {
            Refusal::conflict(format!("No {} session for this event", kind.as_str()))
        })
    }

    fn latest_session_of(&self, agent_id: i64) -> Option<usize> {
        self.sessions
            .iter()
            .rposition(|s| s.agent_id == Some(agent_id))
    }
}

/// The queues the session went through (`queue_path_names`): the scenario's menu path, else
/// its selected menu, else one default queue.
fn queue_path(session: &SimSession) -> Vec<String> {
    if let Some(path) = session.extra.get("menu_path").and_then(Value::as_str) {
        return path.split('>').map(|p| p.trim().to_owned()).collect();
    }
    match session
        .extra
        .get("selected_menu")
        .and_then(|m| m["name"].as_str())
    {
        Some(name) => vec![name.to_owned()],
        None => vec!["Support".to_owned()],
    }
}

impl SimSession {
    /// The platform's status names for the Manager API (its documented list, lower-cased).
    fn platform_status(&self) -> &'static str {
        match self.status {
            SessionStatus::Selecting => "selecting",
            SessionStatus::Assigned => "assigned",
            SessionStatus::Ringing => "queued",
            SessionStatus::Connected | SessionStatus::OnHold => "connected",
            SessionStatus::WrapUp | SessionStatus::Finished => "finished",
            SessionStatus::Missed | SessionStatus::Abandoned => "failed",
            SessionStatus::Voicemail => "voicemail",
        }
    }

    fn session_type(&self) -> &'static str {
        let origin = self.extra.get("origin").and_then(Value::as_str);
        match (self.kind, self.direction, origin) {
            (SessionType::Call, Direction::Outbound, _) => "Voice Outbound (API)",
            (SessionType::Call, _, Some("mobile_sdk")) => "Voice Inbound (App)",
            (SessionType::Call, _, Some("web_sdk")) => "Voice Inbound (Web)",
            (SessionType::Call, _, _) => "Voice Inbound (IVR)",
            (SessionType::Chat, _, Some("mobile_sdk")) => "Messaging Inbound (App Chat)",
            (SessionType::Chat, _, _) => "Messaging Inbound (Web Chat)",
        }
    }

    /// The Manager API's call or chat resource: the documented fields, and under
    /// `x_extension` the scenario's facts the platform does not document.
    fn resource(&self, agents: &[crate::ccai::Agent]) -> Value {
        let agent = self
            .agent_id
            .filter(|_| self.accepted)
            .and_then(|id| agents.iter().find(|a| a.id == id));
        let duration = self
            .connected_at_ms
            .zip(self.ended_at_ms)
            .map(|(start, end)| (end - start).max(0) / 1000);
        let (type_key, duration_key) = match self.kind {
            SessionType::Call => ("call_type", "call_duration"),
            SessionType::Chat => ("chat_type", "chat_duration"),
        };
        let end_user = self.extra.get("end_user").cloned().unwrap_or(Value::Null);
        let mut extension = serde_json::Map::new();
        for key in ["origin", "custom_data"] {
            if let Some(value) = self.extra.get(key) {
                extension.insert(key.into(), value.clone());
            }
        }
        if let Some(of) = self.extra.get("callback_of") {
            extension.insert(
                "callback_of".into(),
                json!({"id": of["session_id"], "reason": of["reason"]}),
            );
        }
        if end_user.is_object() {
            extension.insert(
                "end_user".into(),
                json!({"phone": end_user["phone"], "email": end_user["email"], "name": end_user["name"]}),
            );
        }
        json!({
            "id": self.id,
            type_key: self.session_type(),
            "status": self.platform_status(),
            "lang": self.extra.get("lang").cloned().unwrap_or(json!("en")),
            "created_at": format_utc_ms(self.created_at_ms),
            "connected_at": self.connected_at_ms.map(format_utc_ms),
            "ends_at": self.ended_at_ms.map(format_utc_ms),
            "queue_duration": self.extra.get("queue_duration").cloned().unwrap_or(json!(0)),
            duration_key: duration,
            "hold_duration": self.extra.get("hold_duration").cloned().unwrap_or(json!(0)),
            "rating": self.rating,
            "has_feedback": self.rating.is_some(),
            "recording_url": self.recording_url,
            "voicemail_reason": if self.status == SessionStatus::Voicemail { "no_agent_available" } else { "not_voicemail" },
            "selected_menu": self.extra.get("selected_menu"),
            "menu_path": self.extra.get("menu_path").and_then(Value::as_str).map(|name| json!({"name": name})),
            "end_user": {"id": self.id, "identifier": end_user["identifier"].as_str().map(str::to_owned).or(self.number.clone()), "out_contact_id": null},
            "out_ticket_id": self.conversation_id,
            "agent_info": agent.map(|a| json!({"id": a.id, "name": format!("{} {}", a.first_name, a.last_name),
                "first_name": a.first_name, "last_name": a.last_name})),
            "transfers": [],
            "x_extension": extension,
        })
    }
}

/// `GET /manager/api/v1/calls/{id}` and `GET /manager/api/v1/chats/{id}`.
pub async fn resource(
    State(ccai): State<Ccai>,
    Path((what, id)): Path<(String, String)>,
) -> Response {
    let kind = match what.as_str() {
        "calls" => SessionType::Call,
        "chats" => SessionType::Chat,
        _ => return message(StatusCode::NOT_FOUND, "Not found"),
    };
    let data = ccai.data();
    let found = id
        .parse::<i64>()
        .ok()
        .and_then(|id| data.sessions.iter().find(|s| s.id == id && s.kind == kind));
    match found {
        Some(session) => Json(session.resource(&data.agents)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Not found"),
    }
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Refusal> {
    body.map(|Json(value)| value)
        .map_err(|rejection| Refusal::bad_request(rejection.body_text()))
}

/// `POST /_sim/scenarios`: 201 with the session.
pub async fn scenario(
    State(ccai): State<Ccai>,
    body: Result<Json<Scenario>, JsonRejection>,
) -> Response {
    let result = json_body(body).and_then(|scenario| ccai.data().run_scenario(&ccai, scenario));
    match result {
        Ok(session) => (StatusCode::CREATED, Json(session)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /_sim/sessions`: every call and chat, oldest first.
pub async fn list(State(ccai): State<Ccai>) -> Json<Vec<SimSession>> {
    Json(ccai.data().sessions.clone())
}

/// `POST /_sim/calls/{id}/{event}`: the customer's or the platform's side.
pub async fn platform_event(
    State(ccai): State<Ccai>,
    Path((id, event)): Path<(String, String)>,
) -> Response {
    let action = match event.as_str() {
        "connect" => Action::Connect,
        // The agent answers in the platform's own softphone (not through the API).
        "answer" => Action::Answer,
        "miss" => Action::Miss,
        "customer_hang_up" => Action::CustomerHangUp,
        "wrap_up_done" => Action::WrapUpDone,
        _ => return Refusal::not_found("Unknown event").into_response(),
    };
    let Ok(id) = id.parse::<i64>() else {
        return Refusal::not_found("Call not found").into_response();
    };
    match ccai.data().act(&ccai, id, None, action) {
        Ok(session) => Json(session).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /ext/call-control/v1/capabilities`.
pub async fn capabilities(State(ccai): State<Ccai>) -> Response {
    if !ccai.call_controls {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    Json(json!({ "controls": CONTROLS })).into_response()
}

#[derive(Deserialize)]
pub struct ControlBody {
    agent_id: Option<i64>,
    #[serde(default)]
    digits: Option<String>,
    #[serde(default)]
    target: Option<String>,
}

/// `POST /ext/call-control/v1/{calls|chats}/{id}/{action}` with `{"agent_id", "digits"?,
/// "target"?}`.
pub async fn control(
    State(ccai): State<Ccai>,
    Path((what, id, action)): Path<(String, String, String)>,
    body: Result<Json<ControlBody>, JsonRejection>,
) -> Response {
    if !ccai.call_controls {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let kind = match what.as_str() {
        "calls" => SessionType::Call,
        "chats" => SessionType::Chat,
        _ => return message(StatusCode::NOT_FOUND, "Not Found"),
    };
    let Some(id) = id.parse::<i64>().ok().filter(|id| {
        ccai.data()
            .sessions
            .iter()
            .any(|s| s.id == *id && s.kind == kind)
    }) else {
        return Refusal::not_found("Call not found").into_response();
    };
    let body = match json_body(body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(agent_id) = body.agent_id else {
        return message(StatusCode::BAD_REQUEST, "agent_id is required");
    };
    let action = match action.as_str() {
        "answer" => Action::Answer,
        "hold" => Action::Hold,
        "resume" => Action::Resume,
        "mute" => Action::Mute,
        "unmute" => Action::Unmute,
        "end" => Action::End,
        "transfer" => match body.target {
            Some(target) => Action::Transfer(target),
            None => return message(StatusCode::BAD_REQUEST, "target is required"),
        },
        "dtmf" => match body.digits {
            Some(digits) => Action::Dtmf(digits),
            None => return message(StatusCode::BAD_REQUEST, "digits is required"),
        },
        "hang_up_and_call_back" => Action::HangUpAndCallBack,
        "call_back" => Action::CallBack,
        _ => return message(StatusCode::NOT_FOUND, "Unknown call control"),
    };
    match ccai.data().act(&ccai, id, Some(agent_id), action) {
        Ok(session) => Json(session).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::{Target, Webhooks};

    fn ccai() -> Ccai {
        let webhooks = Webhooks::spawn(
            Some(Target {
                url: "http://127.0.0.1:9/nowhere".into(),
                user: "u".into(),
                password: "p".into(),
                chat_user: "c".into(),
                chat_password: "q".into(),
            }),
            adapter_core::backoff::Backoff::default(),
        );
        let mut ccai = Ccai::new("demo".into(), "t".into(), webhooks);
        ccai.wrap_up = std::time::Duration::ZERO;
        ccai
    }

    fn status_of(data: &CcaiData, agent: i64) -> i64 {
        data.agent_status(agent).unwrap_or(i64::MIN)
    }

    /// A scenario of `kind` for Grace (102) with nothing else set.
    fn scenario(kind: ScenarioKind) -> Scenario {
        Scenario {
            kind,
            agent_id: 102,
            number: None,
            conversation_id: None,
            rating: None,
            name: None,
            result: None,
            session: None,
            recording: false,
            error: None,
            files: None,
            text: None,
            session_id: None,
        }
    }

    fn inbound(data: &mut CcaiData, ccai: &Ccai, kind: ScenarioKind) -> i64 {
        let scenario = Scenario {
            conversation_id: Some("conv-1".into()),
            ..scenario(kind)
        };
        data.run_scenario(ccai, scenario)
            .map(|s| s.id)
            .unwrap_or(-1)
    }

    #[tokio::test]
    async fn an_inbound_call_follows_the_platform_status_rules() {
        let ccai = ccai();
        let mut data = CcaiData::default();
        data.agents[1].next_status_id = Some(-2);
        let id = inbound(&mut data, &ccai, ScenarioKind::InboundCall);
        type Outcome = Result<(SessionStatus, i64), StatusCode>;
        let steps: Vec<(Action, Outcome)> = vec![
            (Action::Hold, Err(StatusCode::CONFLICT)),
            (Action::Answer, Ok((SessionStatus::Connected, IN_CALL))),
            (Action::Answer, Err(StatusCode::CONFLICT)),
            (Action::Hold, Ok((SessionStatus::OnHold, IN_CALL))),
            (Action::Dtmf("1".into()), Err(StatusCode::CONFLICT)),
            (Action::Resume, Ok((SessionStatus::Connected, IN_CALL))),
            (Action::Dtmf("12x".into()), Err(StatusCode::BAD_REQUEST)),
            (
                Action::Dtmf("12#".into()),
                Ok((SessionStatus::Connected, IN_CALL)),
            ),
            (Action::Mute, Ok((SessionStatus::Connected, IN_CALL))),
            (Action::Mute, Err(StatusCode::CONFLICT)),
            (Action::Unmute, Ok((SessionStatus::Connected, IN_CALL))),
            (Action::End, Ok((SessionStatus::WrapUp, WRAP_UP))),
            (Action::End, Err(StatusCode::CONFLICT)),
            // Wrap-up done: the next status (Break) rather than Available.
            (Action::WrapUpDone, Ok((SessionStatus::Finished, -2))),
        ];
        for (action, want) in steps {
            let got = data
                .act(&ccai, id, None, action.clone())
                .map(|s| (s.status, status_of(&data, 102)))
                .map_err(|r| r.status);
            assert_eq!(got, want, "{action:?}");
        }
        assert_eq!(data.sessions[0].dtmf, "12#");
        assert_eq!(data.agents[1].next_status_id, None);
        let events: Vec<String> = ccai
            .webhooks
            .deliveries()
            .into_iter()
            .map(|d| d.event_type)
            .collect();
        // The documented lifecycle, and the extension for what it does not tell.
        assert_eq!(
            events,
            [
                "call.started",
                "call.routing",
                "extension.call.offered",
                "call.assigned",
                "call.active",
                "extension.call.held",
                "extension.call.resumed",
                "extension.call.dtmf",
                "extension.call.muted",
                "extension.call.unmuted",
                "call.ended",
                "call.final"
            ]
        );
    }

    #[tokio::test]
    async fn offers_go_to_available_agents_and_a_missed_one_sets_missed_call() {
        let ccai = ccai();
        let mut data = CcaiData::default();
        let id = inbound(&mut data, &ccai, ScenarioKind::InboundCall);
        assert_eq!(
            data.act(&ccai, id, Some(103), Action::Answer)
                .map(|_| ())
                .map_err(|r| r.status),
            Err(StatusCode::CONFLICT),
            "another agent's call"
        );
        data.act(&ccai, id, None, Action::Miss)
            .map(|_| ())
            .unwrap_or_else(|r| panic!("{r:?}"));
        assert_eq!(status_of(&data, 102), MISSED_CALL);
        let refused = data.run_scenario(&ccai, scenario(ScenarioKind::InboundCall));
        assert_eq!(
            refused.map(|_| ()).map_err(|r| r.status),
            Err(StatusCode::CONFLICT)
        );
    }

    #[tokio::test]
    async fn a_chat_makes_the_agent_in_chat_and_has_no_voice_controls() {
        let ccai = ccai();
        let mut data = CcaiData::default();
        let id = inbound(&mut data, &ccai, ScenarioKind::Chat);
        assert!(data.act(&ccai, id, None, Action::Answer).is_ok());
        assert_eq!(status_of(&data, 102), IN_CHAT);
        assert_eq!(
            data.act(&ccai, id, None, Action::Hold)
                .map_err(|r| r.status)
                .map(|_| ()),
            Err(StatusCode::CONFLICT)
        );
        assert!(data.act(&ccai, id, None, Action::End).is_ok());
        assert_eq!(status_of(&data, 102), WRAP_UP);
    }

    #[tokio::test]
    async fn call_back_needs_a_short_finished_call_and_hang_up_and_call_back_places_a_new_one() {
        let ccai = ccai();
        let mut data = CcaiData::default();
        let id = inbound(&mut data, &ccai, ScenarioKind::InboundCall);
        for action in [Action::Answer, Action::End, Action::WrapUpDone] {
            assert!(data.act(&ccai, id, None, action).is_ok());
        }
        let again = data.act(&ccai, id, Some(102), Action::CallBack);
        let again = again.unwrap_or_else(|r| panic!("{r:?}"));
        assert_ne!(again.id, id);
        assert_eq!(
            (again.direction, again.status, again.number.as_deref()),
            (
                Direction::Outbound,
                SessionStatus::Assigned,
                Some(DEFAULT_NUMBER)
            )
        );
        assert_eq!(
            data.act(&ccai, id, Some(102), Action::CallBack)
                .map_err(|r| r.status)
                .map(|_| ()),
            Err(StatusCode::CONFLICT),
            "busy with the new call"
        );
        assert!(data.act(&ccai, again.id, None, Action::Connect).is_ok());
        let third = data
            .act(&ccai, again.id, Some(102), Action::HangUpAndCallBack)
            .unwrap_or_else(|r| panic!("{r:?}"));
        assert_eq!(data.sessions[1].status, SessionStatus::Finished);
        assert_eq!(third.status, SessionStatus::Assigned);
        assert_eq!(status_of(&data, 102), IN_CALL);
        // A long call offers no call back.
        data.sessions[1].ended_at_ms = data.sessions[1].connected_at_ms.map(|c| c + 10_000);
        data.act(&ccai, third.id, None, Action::End)
            .map(|_| ())
            .unwrap_or_else(|r| panic!("{r:?}"));
        data.act(&ccai, third.id, None, Action::WrapUpDone)
            .map(|_| ())
            .unwrap_or_else(|r| panic!("{r:?}"));
        let long = data.act(&ccai, again.id, Some(102), Action::CallBack);
        assert_eq!(
            long.map(|_| ()).map_err(|r| r.message),
            Err("Call back is offered only after a call under 10 seconds".into())
        );
    }

    #[tokio::test]
    async fn csat_and_smart_action_attach_to_the_latest_session() {
        let ccai = ccai();
        let mut data = CcaiData::default();
        let csat = |data: &mut CcaiData, rating| {
            data.run_scenario(
                &ccai,
                Scenario {
                    rating: Some(rating),
                    ..scenario(ScenarioKind::Csat)
                },
            )
            .map(|s| s.rating)
            .map_err(|r| r.status)
        };
        assert_eq!(
            csat(&mut data, 4),
            Err(StatusCode::CONFLICT),
            "nothing to rate yet"
        );
        inbound(&mut data, &ccai, ScenarioKind::Voicemail);
        assert!(data.sessions[0]
            .recording_url
            .as_deref()
            .is_some_and(|u| u.ends_with(".wav")));
        assert_eq!(csat(&mut data, 6), Err(StatusCode::BAD_REQUEST));
        assert_eq!(csat(&mut data, 4), Ok(Some(4)));
        inbound(&mut data, &ccai, ScenarioKind::SmartAction);
        assert_eq!(data.sessions[0].smart_actions.len(), 1);
        let events: Vec<String> = ccai
            .webhooks
            .deliveries()
            .into_iter()
            .map(|d| d.event_type)
            .collect();
        assert_eq!(
            events,
            [
                "call.started",
                "call.routing",
                "call.ended",
                "extension.call.csat",
                "extension.call.smart_action"
            ]
        );
    }
}
