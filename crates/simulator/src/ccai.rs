//! The CCAI Platform subset the gateway uses, with the documented shapes, error messages and
//! status rules: HTTP Basic (tenant subdomain and API token), the tenant's 10 requests per
//! second, agents, user statuses, setting statuses (many agents at once, per-agent results),
//! and placing outbound calls.

use std::sync::{Arc, Mutex};

use adapter_core::rate::TokenBucket;
use axum::{
    extract::{Query, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{faults::Faults, webhooks::Webhooks};

/// The tenant's request budget, per second (the platform's documented limit).
pub const REQUESTS_PER_SECOND: u32 = 10;

#[derive(Clone, Debug, Serialize)]
pub struct UserStatus {
    pub id: i64,
    pub name: String,
    pub color: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Agent {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// The current status's id.
    pub status_id: i64,
    /// Applied when the agent's call and wrap-up end.
    pub next_status_id: Option<i64>,
    pub online: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Call {
    pub id: i64,
    pub call_type: String,
    pub status: String,
    pub agent_email: String,
    pub end_user_number: Option<String>,
    pub ticket_id: Option<String>,
    pub outbound_number: Option<String>,
    pub lang: Option<String>,
}

/// One `agent_statuses` request as the simulator received it.
#[derive(Clone, Debug, Serialize)]
pub struct StatusRequest {
    pub status: String,
    pub agent_ids: Vec<i64>,
}

#[derive(Debug, Serialize)]
pub struct CcaiData {
    pub statuses: Vec<UserStatus>,
    pub agents: Vec<Agent>,
    pub calls: Vec<Call>,
    pub status_requests: Vec<StatusRequest>,
    /// The tenant's outbound numbers; with more than one, a call without `outbound_number`
    /// waits for the agent to pick one (202).
    pub outbound_numbers: Vec<String>,
    /// Calls and chats, with their states (see [`crate::sessions`]).
    pub sessions: Vec<crate::sessions::SimSession>,
    /// Requests refused with 429 because they came over the tenant's budget: a client that
    /// keeps to the budget never sees one.
    pub rate_limited: u64,
    #[serde(skip)]
    pub(crate) next_call_id: i64,
}

/// Whether the agent is busy with a call or chat (In-chat, In-call, Wrap-up): a change then
/// waits as the next status. Missed Call is a system status the agent may leave.
pub fn blocks_changes(id: i64) -> bool {
    matches!(id, -8..=-6)
}

/// Whether a status is set by the platform itself (never by an API call): the core's rule, the
/// gateway's too.
pub use adapter_core::status_policy::is_system_status;

impl Default for CcaiData {
    fn default() -> Self {
        let status = |id: i64, name: &str, color: &str| UserStatus {
            id,
            name: name.into(),
            color: color.into(),
        };
        let agent = |id: i64, email: &str, first: &str, last: &str, status_id: i64| Agent {
            id,
            email: email.into(),
            first_name: first.into(),
            last_name: last.into(),
            status_id,
            next_status_id: None,
            online: true,
        };
        CcaiData {
            statuses: vec![
                status(0, "Available", "green"),
                status(-1, "Unavailable", "red"),
                status(-2, "Break", "orange"),
                status(-3, "Special Task", "purple"),
                status(-4, "Meal", "yellow"),
                status(-5, "Missed Call", "red"),
                status(-6, "Wrap-up", "light_blue"),
                status(-7, "In-call", "blue"),
                status(-8, "In-chat", "blue"),
                status(-10, "Offline", "grey"),
                status(1, "Training", "light_blue"),
                status(2, "Email only", "dark_green"),
            ],
            agents: vec![
                agent(101, "ada.lovelace@example.com", "Ada", "Lovelace", -10),
                agent(102, "grace.hopper@example.com", "Grace", "Hopper", 0),
                agent(103, "alan.turing@example.com", "Alan", "Turing", -1),
            ],
            calls: Vec::new(),
            status_requests: Vec::new(),
            outbound_numbers: vec!["+14155550100".into()],
            sessions: Vec::new(),
            rate_limited: 0,
            next_call_id: 1000,
        }
    }
}

impl CcaiData {
    /// Back to the initial data; call and session ids keep counting, so that an id never names
    /// two calls (a timer or a gateway may still hold an old one).
    pub fn reset(&mut self) {
        let next_call_id = self.next_call_id;
        *self = CcaiData::default();
        self.next_call_id = next_call_id;
    }

    pub(crate) fn status(&self, id: i64) -> Option<&UserStatus> {
        self.statuses.iter().find(|s| s.id == id)
    }

    pub(crate) fn status_ref(&self, id: i64) -> serde_json::Value {
        match self.status(id) {
            Some(s) => json!({"id": s.id, "name": s.name}),
            None => json!({"id": id, "name": null}),
        }
    }
}

/// The CCAI side of the simulator: its data, credentials, request budget, faults and webhooks.
#[derive(Clone)]
pub struct Ccai {
    pub data: Arc<Mutex<CcaiData>>,
    pub subdomain: String,
    pub token: String,
    budget: Arc<Mutex<TokenBucket>>,
    started: std::time::Instant,
    pub webhooks: Webhooks,
    pub faults: Faults,
    /// How long wrap-up lasts before it ends by itself; zero: only `wrap_up_done` ends it.
    pub wrap_up: std::time::Duration,
    /// Whether the call-control extension is on (off, its routes 404 like the public API's).
    pub call_controls: bool,
    /// The simulated API's own base URL (recording URLs point here).
    pub api_url: String,
}

impl std::fmt::Debug for Ccai {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ccai")
            .field("subdomain", &self.subdomain)
            .field("token", &"***")
            .finish_non_exhaustive()
    }
}

impl Ccai {
    pub fn new(subdomain: String, token: String, webhooks: Webhooks) -> Self {
        Ccai {
            webhooks,
            faults: Faults::default(),
            wrap_up: std::time::Duration::from_secs(5),
            call_controls: true,
            api_url: String::new(),
            data: Arc::default(),
            subdomain,
            token,
            budget: Arc::new(Mutex::new(TokenBucket::new(
                REQUESTS_PER_SECOND,
                REQUESTS_PER_SECOND,
            ))),
            started: std::time::Instant::now(),
        }
    }

    pub fn data(&self) -> std::sync::MutexGuard<'_, CcaiData> {
        self.data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn authorised(&self, request: &Request) -> bool {
        let expected = format!("{}:{}", self.subdomain, self.token);
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|encoded| base64_decode(encoded.trim()))
            .is_some_and(|decoded| decoded == expected.as_bytes())
    }
}

pub(crate) fn message(code: StatusCode, text: &str) -> Response {
    (code, Json(json!({ "message": text }))).into_response()
}

/// Injected faults, HTTP Basic and the tenant's request budget, before any CCAI handler.
pub async fn guard(State(ccai): State<Ccai>, request: Request, next: Next) -> Response {
    if let Some(faulted) = crate::faults::respond(ccai.faults.verdict().await) {
        return faulted;
    }
    if !ccai.authorised(&request) {
        return message(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let now_ms = ccai.started.elapsed().as_secs_f64() * 1000.0;
    let allowed = ccai
        .budget
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .try_take(now_ms);
    if !allowed {
        ccai.data().rate_limited += 1;
        let mut response = message(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    next.run(request).await
}

#[derive(Deserialize)]
pub struct Paging {
    page: Option<usize>,
    per: Option<usize>,
}

fn page<T: Clone>(items: &[T], paging: &Paging) -> Vec<T> {
    let per = paging.per.unwrap_or(25).clamp(1, 100);
    let page = paging.page.unwrap_or(1).max(1);
    items
        .iter()
        .skip((page - 1) * per)
        .take(per)
        .cloned()
        .collect()
}

/// `GET /manager/api/v1/agents`
pub async fn agents(State(ccai): State<Ccai>, Query(paging): Query<Paging>) -> Response {
    let data = ccai.data();
    let agents: Vec<serde_json::Value> = page(&data.agents, &paging)
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id, "email": a.email, "first_name": a.first_name, "last_name": a.last_name,
                "agent_number": format!("A{}", a.id),
                "status": data.status(a.status_id).map_or_else(
                    || json!({"id": a.status_id, "name": null, "color": null}),
                    |s| json!({"id": s.id, "name": s.name, "color": s.color}),
                ),
                "status_updated_at": null, "crm_authenticated": true,
                "online": a.online, "wrap_up": a.status_id == -6, "call_count": 0, "chat_count": 0,
                "roles": ["agent"], "teams": [], "channels": ["voice", "chat"],
            })
        })
        .collect();
    Json(agents).into_response()
}

/// `GET /manager/api/v1/user_statuses`
pub async fn user_statuses(State(ccai): State<Ccai>, Query(paging): Query<Paging>) -> Response {
    let data = ccai.data();
    Json(page(&data.statuses, &paging)).into_response()
}

#[derive(Deserialize)]
pub struct SetStatus {
    status: String,
    #[serde(default)]
    agent_ids: Vec<i64>,
    #[serde(default)]
    team_ids: Vec<i64>,
}

/// `POST /apps/api/v1/agent_statuses`: one entry per agent; success is per agent.
pub async fn set_agent_statuses(
    State(ccai): State<Ccai>,
    body: Result<Json<SetStatus>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return message(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    let mut data = ccai.data();
    data.status_requests.push(StatusRequest {
        status: request.status.clone(),
        agent_ids: request.agent_ids.clone(),
    });
    let Some(target) = data
        .statuses
        .iter()
        .find(|s| s.name == request.status)
        .cloned()
    else {
        return message(
            StatusCode::BAD_REQUEST,
            &format!("Status '{}' not found", request.status),
        );
    };
    if request.agent_ids.is_empty() && request.team_ids.is_empty() {
        return message(StatusCode::BAD_REQUEST, "agent_ids or team_ids is required");
    }
    let mut results = Vec::new();
    for agent_id in request.agent_ids {
        let Some(index) = data.agents.iter().position(|a| a.id == agent_id) else {
            results.push(json!({"agent_id": agent_id, "message": "Agent not found"}));
            continue;
        };
        let current = data.agents[index].status_id;
        let previous = data.status_ref(current);
        let message = if is_system_status(target.id) {
            Some(format!("Status '{}' can't be set", target.name))
        } else if blocks_changes(current) {
            let name = data
                .status(current)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            // During a call or wrap-up the change is kept as the next status.
            data.agents[index].next_status_id = Some(target.id);
            Some(format!(
                "Agent can't be changed from system status '{name}'"
            ))
        } else {
            data.agents[index].status_id = target.id;
            None
        };
        let current_ref = data.status_ref(data.agents[index].status_id);
        let mut entry = json!({"agent_id": agent_id, "previous_status": previous, "current_status": current_ref});
        if let Some(message) = message {
            entry["message"] = json!(message);
        }
        results.push(entry);
    }
    Json(results).into_response()
}

#[derive(Deserialize)]
pub struct PlaceCall {
    call_type: Option<String>,
    agent_email: Option<String>,
    end_user_number: Option<String>,
    ticket_id: Option<serde_json::Value>,
    outbound_number: Option<String>,
    lang: Option<String>,
}

fn well_formed(number: &str) -> bool {
    let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    digits
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `POST /apps/api/v1/calls`: click-to-call.
pub async fn place_call(
    State(ccai): State<Ccai>,
    body: Result<Json<PlaceCall>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return message(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    if request.call_type.as_deref() != Some("Voice Outbound (API)") {
        return message(StatusCode::BAD_REQUEST, "call_type is not valid");
    }
    let mut data = ccai.data();
    let email = request.agent_email.unwrap_or_default();
    let Some(agent) = data
        .agents
        .iter()
        .find(|a| a.email.eq_ignore_ascii_case(&email))
        .cloned()
    else {
        return message(StatusCode::BAD_REQUEST, "Not a valid agent email");
    };
    let ticket_id = request.ticket_id.map(|t| match t {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    match (&request.end_user_number, &ticket_id) {
        (None, None) => {
            return message(
                StatusCode::BAD_REQUEST,
                "end_user_number or ticket_id is required",
            )
        }
        (Some(number), None) if !well_formed(number) => {
            return message(
                StatusCode::BAD_REQUEST,
                "end_user_number is not well-formed",
            )
        }
        _ => {}
    }
    if agent.status_id != 0 {
        return message(
            StatusCode::BAD_REQUEST,
            "Agent is not available to take this call",
        );
    }
    let call_id = data.take_call_id();
    let must_pick = request.outbound_number.is_none() && data.outbound_numbers.len() > 1;
    let call = Call {
        id: call_id,
        call_type: "Voice Outbound (API)".into(),
        status: if must_pick { "selecting" } else { "assigned" }.into(),
        agent_email: agent.email.clone(),
        end_user_number: request.end_user_number,
        ticket_id,
        outbound_number: request.outbound_number.or_else(|| {
            (data.outbound_numbers.len() == 1).then(|| data.outbound_numbers[0].clone())
        }),
        lang: request.lang,
    };
    data.calls.push(call.clone());
    data.outbound_placed(
        &ccai,
        call.id,
        agent.id,
        call.end_user_number.clone(),
        call.ticket_id.clone(),
        must_pick,
    );
    let code = if must_pick {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    (code, Json(call)).into_response()
}

#[derive(Deserialize)]
pub struct ForceStatus {
    status_id: i64,
}

/// `POST /_sim/ccai/agents/{id}/status`: puts an agent in any status, system ones included, as
/// the platform itself does when a call is offered or ends (tests and scenarios). Leaving a
/// system status applies the agent's next status, when it has one.
pub async fn force_status(
    State(ccai): State<Ccai>,
    axum::extract::Path(agent_id): axum::extract::Path<i64>,
    Json(body): Json<ForceStatus>,
) -> Response {
    let mut data = ccai.data();
    if data.status(body.status_id).is_none() {
        return message(StatusCode::BAD_REQUEST, "unknown status id");
    }
    let Some(agent) = data.agents.iter_mut().find(|a| a.id == agent_id) else {
        return message(StatusCode::NOT_FOUND, "Agent not found");
    };
    agent.status_id = match (
        is_system_status(body.status_id),
        agent.next_status_id.take(),
    ) {
        (false, Some(next)) => next,
        (true, next) => {
            agent.next_status_id = next;
            body.status_id
        }
        (false, None) => body.status_id,
    };
    Json(json!({"agent_id": agent.id, "status_id": agent.status_id, "next_status_id": agent.next_status_id})).into_response()
}

/// `DELETE /_sim/ccai/statuses/{id}`: an administrator removes a status from the tenant (tests
/// of a status mapping gone stale); `204`, `404` when there is none. Agents in it keep it.
pub async fn delete_status(
    State(ccai): State<Ccai>,
    axum::extract::Path(status_id): axum::extract::Path<i64>,
) -> Response {
    let mut data = ccai.data();
    let before = data.statuses.len();
    data.statuses.retain(|s| s.id != status_id);
    if data.statuses.len() == before {
        return message(StatusCode::NOT_FOUND, "Status not found");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_sim/ccai/outbound_numbers`: the tenant's outbound numbers (tests).
pub async fn set_outbound_numbers(
    State(ccai): State<Ccai>,
    Json(numbers): Json<Vec<String>>,
) -> StatusCode {
    ccai.data().outbound_numbers = numbers;
    StatusCode::NO_CONTENT
}

/// Standard base64 (RFC 4648) decoding, for HTTP Basic credentials.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..=n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_basic_credentials() {
        assert_eq!(
            base64_decode("ZGVtbzpzaW0tdG9rZW4="),
            Some(b"demo:sim-token".to_vec())
        );
        assert_eq!(base64_decode("YQ=="), Some(b"a".to_vec()));
        assert_eq!(base64_decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(base64_decode("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(base64_decode("Y"), None);
        assert_eq!(base64_decode("!!!!"), None);
    }

    #[test]
    fn system_statuses() {
        for id in [-5, -6, -7, -8, -9, -11] {
            assert!(is_system_status(id), "{id}");
        }
        for id in [0, -1, -2, -3, -4, -10, 1, 2] {
            assert!(!is_system_status(id), "{id}");
        }
    }
}
