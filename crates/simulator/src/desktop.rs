//! The Kustomer desktop's side of a user's routing status, for the host emulator (same origin as
//! the page): reading the user's work session (Kustomer pushes status changes to the desktop,
//! including the ones the gateway writes back), and the user changing it in the desktop (after an
//! offline status, that starts a new work session, as in Kustomer). These changes are the user's
//! own, not API writes: they are not in `/_sim/kustomer/writes`.
//!
//! Also the contact-center agent the desktop's user signs in as in the adapter (the gateway
//! signs a Kustomer user in only as the agent with the same email), whom the host's
//! contact-center panel targets.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    kustomer::{ROUTING_STATUSES, USERS},
    SimState,
};

pub fn routes() -> Router<SimState> {
    Router::new()
        .route(
            "/_sim/desktop/status/{user}",
            get(read_status).put(change_status),
        )
        .route("/_sim/desktop/agent/{user}", get(own_agent))
}

/// `GET /_sim/desktop/agent/{user}`: the CCAI agent whose email is the Kustomer user's,
/// `{"ccai_agent_id", "email"}`; 404 when the user or such an agent is unknown.
async fn own_agent(State(state): State<SimState>, Path(user): Path<String>) -> Response {
    let email = USERS
        .iter()
        .find(|(id, _, _)| *id == user)
        .map(|(_, email, _)| *email);
    let agent = email.and_then(|email| {
        state
            .ccai
            .data()
            .agents
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
            .map(|a| a.id)
    });
    match (email, agent) {
        (Some(email), Some(id)) => {
            Json(json!({"ccai_agent_id": id, "email": email})).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "no contact-center agent has this user's email"})),
        )
            .into_response(),
    }
}

fn status_json(id: &str) -> serde_json::Value {
    let (name, kind) = ROUTING_STATUSES
        .iter()
        .find(|(status, _, _)| *status == id)
        .map_or(("", ""), |(_, name, kind)| (*name, *kind));
    json!({"status_id": id, "name": name, "status_type": kind})
}

/// `GET /_sim/desktop/status/{user}`: the user's current routing status and the choices.
async fn read_status(State(state): State<SimState>, Path(user): Path<String>) -> Response {
    let data = state.kustomer.data();
    let Some(session) = data.latest_work_session(&user) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "no such user"})),
        )
            .into_response();
    };
    let choices: Vec<_> = ROUTING_STATUSES
        .iter()
        .map(|(id, _, _)| status_json(id))
        .collect();
    Json(json!({"current": status_json(&session.status), "statuses": choices})).into_response()
}

#[derive(Deserialize)]
pub struct Change {
    status_id: String,
}

/// `PUT /_sim/desktop/status/{user}` `{"status_id"}`: the user picks a status in the desktop.
async fn change_status(
    State(state): State<SimState>,
    Path(user): Path<String>,
    Json(change): Json<Change>,
) -> Response {
    if !ROUTING_STATUSES
        .iter()
        .any(|(id, _, _)| *id == change.status_id)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "unknown routing status"})),
        )
            .into_response();
    }
    // The user's own change: it may start a new work session after an offline one.
    if state
        .kustomer
        .data()
        .user_sets_status(&user, &change.status_id)
        .is_none()
    {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "no such user"})),
        )
            .into_response();
    }
    Json(json!({"current": status_json(&change.status_id)})).into_response()
}
