//! The admins' endpoints (agents listed in `--admin-emails`; anyone else gets `403
//! admins_only`), under `/api/v1`:
//!
//! - `PUT /status-inheritance`, `GET /status-inheritance/audit`: the inheritance settings.
//! - `POST /crm/custom-fields`: provisions the account and record fields in Kustomer.
//! - `GET|PUT /crm/settings`: abandoned calls, the SDK custom data mapping.
//! - `GET /crm/outbox`: how many operations are pending, held, done, dead, the oldest pending
//!   one's age, the circuit breaker (paused or not, why, since when), and the session events
//!   waiting for their details (with the reason).
//! - `GET /crm/dead-letters`; retries: one dead letter (`POST /crm/dead-letters/{seq}/retry`),
//!   one session's (`POST /crm/sessions/{id}/retry`), every one (`POST
//!   /crm/dead-letters/retry`). A retry also releases the operations held behind the dead
//!   letters it retries.

use adapter_core::agent_api::{
    Audit, CrmSettingsUpdate, CustomFields, DeadLetters, InheritanceSaved, InheritanceSettings,
    Released,
};
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;

use super::{auth::Admin, error::ApiJson};
use crate::{
    crm,
    error::{Code, Error},
    inheritance, AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status-inheritance/audit", get(audit))
        .route("/crm/custom-fields", post(provision))
        .route("/crm/settings", get(get_crm_settings).put(put_crm_settings))
        .route("/crm/outbox", get(outbox))
        .route("/crm/dead-letters", get(dead_letters))
        .route("/crm/dead-letters/retry", post(retry_all))
        .route("/crm/dead-letters/{seq}/retry", post(retry))
        .route("/crm/sessions/{id}/retry", post(retry_session))
}

/// `PUT /api/v1/status-inheritance`: every problem is listed, nothing is saved unless there is
/// none (`422 invalid_settings` with `problems`).
pub(super) async fn put_inheritance(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(settings): ApiJson<InheritanceSettings>,
) -> Result<Response, Error> {
    let settings =
        inheritance::save_settings(&state, &admin.session.agent_email, settings.into()).await?;
    Ok(Json(InheritanceSaved {
        settings: settings.into(),
    })
    .into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /api/v1/status-inheritance/audit`: newest first.
async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<AuditQuery>,
) -> Result<Response, Error> {
    let entries = inheritance::audit(&state, query.limit).await?;
    Ok(Json(Audit { entries }).into_response())
}

fn names(fields: impl IntoIterator<Item = adapter_core::crm::CustomField>) -> Vec<String> {
    fields.into_iter().map(|f| f.name.to_owned()).collect()
}

async fn provision(State(state): State<AppState>, Admin(admin): Admin) -> Result<Response, Error> {
    let at = state.crm.provision_custom_fields().await?;
    tracing::info!(
        by = admin.session.agent_email,
        "custom fields provisioned in Kustomer"
    );
    Ok((
        StatusCode::CREATED,
        Json(CustomFields {
            account_fields: names(adapter_core::crm::ACCOUNT_FIELDS),
            provisioned_at_ms: at,
            record_fields: names(adapter_core::crm::RECORD_FIELDS),
        }),
    )
        .into_response())
}

async fn get_crm_settings(State(state): State<AppState>, _admin: Admin) -> Result<Response, Error> {
    Ok(Json(state.crm.settings().await?).into_response())
}

async fn put_crm_settings(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<CrmSettingsUpdate>,
) -> Result<Response, Error> {
    let settings = state
        .crm
        .update_settings(body.create_abandoned, body.mapping)
        .await?;
    tracing::info!(by = admin.session.agent_email, "CRM sync settings changed");
    Ok(Json(settings).into_response())
}

async fn outbox(State(state): State<AppState>, _admin: Admin) -> Result<Response, Error> {
    Ok(Json(crm::admin::outbox(&state.crm).await?).into_response())
}

async fn dead_letters(State(state): State<AppState>, _admin: Admin) -> Result<Response, Error> {
    let list = crm::admin::dead_letters(&state.crm).await?;
    Ok(Json(DeadLetters { dead_letters: list }).into_response())
}

/// `POST /api/v1/crm/dead-letters/{seq}/retry`: one dead letter, and what waits behind it.
async fn retry(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(seq): Path<i64>,
) -> Result<Response, Error> {
    let released = crm::admin::retry(&state.crm, crm::admin::Retry::One(seq)).await?;
    if released == 0 {
        return Err(Error::new(
            Code::UnknownDeadLetter,
            "No dead letter has this number.",
        ));
    }
    tracing::info!(
        by = admin.session.agent_email,
        seq,
        released,
        "dead letter retried"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/crm/sessions/{id}/retry`: every dead letter of one session, and what waits
/// behind them.
async fn retry_session(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(session_id): Path<i64>,
) -> Result<Response, Error> {
    let released = crm::admin::retry(&state.crm, crm::admin::Retry::Session(session_id)).await?;
    if released == 0 {
        return Err(Error::new(
            Code::NoDeadLetters,
            "This session has no dead letters.",
        ));
    }
    tracing::info!(
        by = admin.session.agent_email,
        session_id,
        released,
        "a session's dead letters retried"
    );
    Ok(Json(Released { released }).into_response())
}

/// `POST /api/v1/crm/dead-letters/retry`: every dead letter, and what waits behind them.
async fn retry_all(State(state): State<AppState>, Admin(admin): Admin) -> Result<Response, Error> {
    let released = crm::admin::retry(&state.crm, crm::admin::Retry::All).await?;
    tracing::info!(
        by = admin.session.agent_email,
        released,
        "every dead letter retried"
    );
    Ok(Json(Released { released }).into_response())
}
