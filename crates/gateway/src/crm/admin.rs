//! Admin endpoints of the CRM sync, for agents listed in `--admin-emails`:
//!
//! - `POST /api/v1/crm/custom-fields`: provisions the account and record fields in Kustomer.
//! - `GET|PUT /api/v1/crm/settings`: abandoned calls, the SDK custom data mapping.
//! - `GET /api/v1/crm/outbox`: how many operations are pending, done, dead, and the session
//!   events waiting for their details (with the reason).
//! - `GET /api/v1/crm/dead-letters`, `POST /api/v1/crm/dead-letters/{seq}/retry`.

use adapter_core::crm::FieldMapping;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::CrmError;
use crate::{
    api::{ApiError, ApiJson, SignedIn},
    AppState,
};

impl From<CrmError> for ApiError {
    fn from(error: CrmError) -> Self {
        match error {
            CrmError::Invalid(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_settings", message)
            }
            CrmError::Kustomer(e) => {
                tracing::warn!(error = %e, "Kustomer error in a CRM admin action");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "kustomer_unavailable",
                    e.to_string(),
                )
            }
            CrmError::Database(e) => {
                tracing::error!(error = %e, "store error in a CRM admin action");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "The gateway cannot reach its database; try again in a moment.",
                )
            }
        }
    }
}

fn admin(state: &AppState, signed_in: &SignedIn) -> Result<(), ApiError> {
    if state.config.is_admin(&signed_in.session.agent_email) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_admin",
            "Only the adapter's administrators can do this.",
        ))
    }
}

async fn provision(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let at = state.crm.provision_custom_fields().await?;
    tracing::info!(
        by = signed_in.session.agent_email,
        "custom fields provisioned in Kustomer"
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({"provisioned_at_ms": at, "account_fields": adapter_core::crm::ACCOUNT_FIELDS.iter().map(|f| f.name).collect::<Vec<_>>(),
            "record_fields": adapter_core::crm::RECORD_FIELDS.iter().map(|f| f.name).collect::<Vec<_>>()})),
    )
        .into_response())
}

async fn get_settings(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    Ok(Json(state.crm.settings().await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsIn {
    #[serde(default)]
    create_abandoned: Option<bool>,
    #[serde(default)]
    mapping: Option<Vec<FieldMapping>>,
}

async fn put_settings(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<SettingsIn>,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let settings = state
        .crm
        .update_settings(body.create_abandoned, body.mapping)
        .await?;
    tracing::info!(
        by = signed_in.session.agent_email,
        "CRM sync settings changed"
    );
    Ok(Json(settings).into_response())
}

async fn outbox(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let pool = state.crm.pool();
    // One statement, one snapshot: counted apart, the planner could move an event from the
    // inbox to the outbox between the two counts, and a drained queue be reported too early.
    let (inbox, pending, done, dead): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM crm_inbox),
                (SELECT COUNT(*) FROM crm_outbox WHERE state = 'pending'),
                (SELECT COUNT(*) FROM crm_outbox WHERE state = 'done'),
                (SELECT COUNT(*) FROM crm_outbox WHERE state = 'dead')",
    )
    .fetch_one(pool)
    .await
    .map_err(CrmError::from)?;
    // Session events whose details could not be read yet, and why: kept, retried, never dropped.
    let waiting: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT seq, attempts, last_error FROM crm_inbox WHERE attempts > 0 ORDER BY seq LIMIT 50",
    )
    .fetch_all(pool)
    .await
    .map_err(CrmError::from)?;
    let waiting: Vec<Value> = waiting
        .into_iter()
        .map(|(seq, attempts, reason)| json!({"seq": seq, "attempts": attempts, "reason": reason}))
        .collect();
    Ok(Json(json!({
        "enabled": state.crm.enabled(),
        "inbox": inbox, "pending": pending, "done": done, "dead": dead,
        "waiting": waiting,
        "kustomer_requests": state.crm.kustomer().requests_sent(),
    }))
    .into_response())
}

/// `(seq, key, session_id, rule, op, attempts, last_error)`.
type DeadRow = (i64, String, i64, String, String, i64, Option<String>);

async fn dead_letters(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let rows: Vec<DeadRow> = sqlx::query_as(
        "SELECT seq, key, session_id, rule, op, attempts, last_error FROM crm_outbox WHERE state = 'dead' ORDER BY seq LIMIT 500",
    )
    .fetch_all(state.crm.pool())
    .await
    .map_err(CrmError::from)?;
    let list: Vec<_> = rows
        .into_iter()
        .map(|(seq, key, session_id, rule, op, attempts, reason)| {
            let op: serde_json::Value = serde_json::from_str(&op).unwrap_or_default();
            json!({"seq": seq, "key": key, "session_id": session_id, "rule": rule,
                "operation": op["op"], "attempts": attempts, "reason": reason})
        })
        .collect();
    Ok(Json(json!({ "dead_letters": list })).into_response())
}

async fn retry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(seq): Path<i64>,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let done = sqlx::query(
        "UPDATE crm_outbox SET state = 'pending', attempts = 0, due_ms = ?, last_error = NULL WHERE seq = ? AND state = 'dead'",
    )
    .bind(crate::sessions::now_ms())
    .bind(seq)
    .execute(state.crm.pool())
    .await
    .map_err(CrmError::from)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_dead_letter",
            "No dead letter has this number.",
        ));
    }
    state.crm.wake_executor();
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/crm/custom-fields", post(provision))
        .route("/api/v1/crm/settings", get(get_settings).put(put_settings))
        .route("/api/v1/crm/outbox", get(outbox))
        .route("/api/v1/crm/dead-letters", get(dead_letters))
        .route("/api/v1/crm/dead-letters/{seq}/retry", post(retry))
}
