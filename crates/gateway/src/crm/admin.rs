//! Admin endpoints of the CRM sync, for agents listed in `--admin-emails`:
//!
//! - `POST /api/v1/crm/custom-fields`: provisions the account and record fields in Kustomer.
//! - `GET|PUT /api/v1/crm/settings`: abandoned calls, the SDK custom data mapping.
//! - `GET /api/v1/crm/outbox`: how many operations are pending, held, done, dead, the oldest
//!   pending one's age, the circuit breaker (paused or not, why, since when), and the session
//!   events waiting for their details (with the reason).
//! - `GET /api/v1/crm/dead-letters`; retries: one dead letter
//!   (`POST /api/v1/crm/dead-letters/{seq}/retry`), one session's
//!   (`POST /api/v1/crm/sessions/{id}/retry`), every one (`POST /api/v1/crm/dead-letters/retry`).
//!   A retry also releases the operations held behind the dead letters it retries.

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
    let figures = state.crm.figures().await?;
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
        "inbox": figures.inbox, "pending": figures.pending, "held": figures.held,
        "done": figures.done, "dead": figures.dead,
        "oldest_pending_age_ms": figures.oldest_pending_age_ms,
        "kustomer": figures.breaker.health(),
        "retry_hours": state.crm.retry_budget().as_secs() / 3600,
        "waiting": waiting,
        "kustomer_requests": state.crm.kustomer().requests_sent(),
    }))
    .into_response())
}

/// `(seq, key, session_id, lane, rule, op, attempts, last_error)`.
type DeadRow = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
);

async fn dead_letters(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let rows: Vec<DeadRow> = sqlx::query_as(
        "SELECT seq, key, session_id, lane, rule, op, attempts, last_error FROM crm_outbox WHERE state = 'dead' ORDER BY seq LIMIT 500",
    )
    .fetch_all(state.crm.pool())
    .await
    .map_err(CrmError::from)?;
    let list: Vec<_> = rows
        .into_iter()
        .map(|(seq, key, session_id, lane, rule, op, attempts, reason)| {
            let op: serde_json::Value = serde_json::from_str(&op).unwrap_or_default();
            let operation = if rule == super::writeback::RULE {
                json!("status_write_back")
            } else {
                op["op"].clone()
            };
            json!({"seq": seq, "key": key, "session_id": session_id, "lane": lane, "rule": rule,
                "operation": operation, "attempts": attempts, "reason": reason})
        })
        .collect();
    Ok(Json(json!({ "dead_letters": list })).into_response())
}

/// Puts dead letters (and the operations held behind them) back in the queue: `dead` selects
/// the dead letters, `lanes` whose held operations go with them. Answers how many.
async fn release(
    state: &AppState,
    dead: &str,
    lanes: &str,
    binds: &[Value],
) -> Result<u64, ApiError> {
    let now = state.crm.clock().now_ms();
    // `dead` and `lanes` are ours, never input; the values are bound.
    let sql = format!(
        "UPDATE crm_outbox SET state = 'pending', attempts = 0, due_ms = ?, last_error = NULL, first_failed_ms = NULL, lease_until_ms = 0
         WHERE (state = 'dead' AND {dead}) OR (state = 'held' AND {lanes})"
    );
    let mut query = sqlx::query(&sql).bind(now);
    for value in binds {
        query = match value {
            Value::Number(n) => query.bind(n.as_i64()),
            other => query.bind(other.as_str().unwrap_or_default().to_owned()),
        };
    }
    let released = query
        .execute(state.crm.pool())
        .await
        .map_err(CrmError::from)?
        .rows_affected();
    if released > 0 {
        state.crm.wake_executor();
    }
    Ok(released)
}

/// `POST /api/v1/crm/dead-letters/{seq}/retry`: one dead letter, and what waits behind it.
async fn retry(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(seq): Path<i64>,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let released = release(
        &state,
        "seq = ?",
        "lane = (SELECT lane FROM crm_outbox WHERE seq = ?) AND seq > ?",
        &[json!(seq), json!(seq), json!(seq)],
    )
    .await?;
    if released == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_dead_letter",
            "No dead letter has this number.",
        ));
    }
    tracing::info!(
        by = signed_in.session.agent_email,
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
    signed_in: SignedIn,
    Path(session_id): Path<i64>,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let lane = super::session_lane(session_id);
    let released = release(&state, "lane = ?", "lane = ?", &[json!(lane), json!(lane)]).await?;
    if released == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_dead_letters",
            "This session has no dead letters.",
        ));
    }
    tracing::info!(
        by = signed_in.session.agent_email,
        session_id,
        released,
        "a session's dead letters retried"
    );
    Ok(Json(json!({ "released": released })).into_response())
}

/// `POST /api/v1/crm/dead-letters/retry`: every dead letter, and what waits behind them.
async fn retry_all(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ApiError> {
    admin(&state, &signed_in)?;
    let released = release(&state, "1 = 1", "1 = 1", &[]).await?;
    tracing::info!(
        by = signed_in.session.agent_email,
        released,
        "every dead letter retried"
    );
    Ok(Json(json!({ "released": released })).into_response())
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/crm/custom-fields", post(provision))
        .route("/api/v1/crm/settings", get(get_settings).put(put_settings))
        .route("/api/v1/crm/outbox", get(outbox))
        .route("/api/v1/crm/dead-letters", get(dead_letters))
        .route("/api/v1/crm/dead-letters/retry", post(retry_all))
        .route("/api/v1/crm/dead-letters/{seq}/retry", post(retry))
        .route("/api/v1/crm/sessions/{id}/retry", post(retry_session))
}
