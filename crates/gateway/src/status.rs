//! The agent's CCAI status as the gateway changes it: the agent's own pick (now, or as the next
//! status during a call or wrap-up), a Kustomer status change the inheritance policy decides,
//! cancelling a next status, the status read at sign-in, and
//! the names of the statuses the session lifecycle implies. Every change is published on the
//! agent's event stream.

use adapter_core::agent_events::{AgentEvent, StatusView};

use crate::{
    ccai::{CcaiApi, UserStatus},
    error::{Code, Error},
    AppState,
};

/// The platform's system statuses the lifecycle implies.
pub const IN_CALL: i64 = -7;
pub const IN_CHAT: i64 = -8;
pub const WRAP_UP: i64 = -6;

/// The agent's pick (`PUT /api/v1/status`).
pub use adapter_core::agent_api::SetStatusRequest as NewStatus;

/// What a status change did.
pub struct StatusChange {
    pub current: Option<StatusView>,
    /// Set when the change waits as the next status (a call, wrap-up).
    pub next: Option<StatusView>,
    /// The system status the agent is in, when the change waits.
    pub busy: Option<UserStatus>,
}

/// Sets `target` for `agent_id` upstream (coalesced with other agents' changes) and publishes
/// the result on the agent's stream. During a call or wrap-up the platform keeps it as the next
/// status.
pub async fn change_status(
    state: &AppState,
    agent_id: i64,
    statuses: &[UserStatus],
    target: &UserStatus,
) -> Result<StatusChange, Error> {
    let result = state.status_setter.set(agent_id, &target.name).await?;
    let view = |id: i64, name: &str| StatusView {
        id,
        name: name.to_owned(),
    };
    let current = result
        .current_status
        .as_ref()
        .map(|c| view(c.id, c.name.as_deref().unwrap_or_default()));
    let busy = result
        .current_status
        .as_ref()
        .and_then(|c| statuses.iter().find(|s| s.id == c.id))
        .filter(|s| s.is_system())
        .cloned();
    // A refusal while in a system status (a call, wrap-up) means the change waits as the next one.
    let next = match (result.message, &busy) {
        (None, _) => None,
        (Some(_), Some(_)) => Some(view(target.id, &target.name)),
        (Some(message), None) => return Err(Error::new(Code::CcaiRejected, message)),
    };
    state.agent_status.touched(agent_id);
    state
        .events
        .publish(
            agent_id,
            AgentEvent::StatusChanged {
                status: current.clone(),
                next_status: next.clone(),
            },
        )
        .await?;
    Ok(StatusChange {
        current,
        next,
        busy,
    })
}

/// What the agent's own pick did; `waits` says why it waits as the next status.
pub struct SetStatus {
    pub change: StatusChange,
    pub waits: Option<String>,
}

/// The agent's own pick (`PUT /api/v1/status`): set now; during a call or wrap-up the platform
/// keeps it as the next status, and the change says why it waits.
pub async fn set_status(
    state: &AppState,
    agent_id: i64,
    request: NewStatus,
) -> Result<SetStatus, Error> {
    let statuses = state.ccai.user_statuses().await?;
    let Some(target) = statuses.iter().find(|s| s.id == request.status_id) else {
        return Err(Error::new(
            Code::UnknownStatus,
            "The contact center has no such status.",
        ));
    };
    if target.is_system() {
        return Err(Error::new(
            Code::StatusNotSelectable,
            format!(
                "{} is set by the contact center itself and cannot be chosen.",
                target.name
            ),
        ));
    }
    let at = crate::inheritance::clamp_at(request.at_ms, crate::clock::now_ms());
    let in_conversation = state
        .inheritance
        .condition(&state.events.state(agent_id), &statuses)
        == adapter_core::status_policy::Condition::InConversation;
    if !state
        .inheritance
        .adapter_change_is_current(agent_id, at, in_conversation)
    {
        return Err(Error::new(Code::Superseded, "Your Kustomer status changed after you picked this one, and the latest change wins: your status follows Kustomer's.",
        ));
    }
    let change = change_status(state, agent_id, &statuses, target).await?;
    state
        .inheritance
        .remember(
            agent_id,
            adapter_core::status_policy::Source::Adapter,
            at,
            change.next.is_some(),
        )
        .await;
    if let Some(current) = change.current.as_ref().filter(|_| change.next.is_none()) {
        if let Some((seq, finished)) = state
            .inheritance
            .write_back(state, agent_id, current, &statuses)
            .await
        {
            // Stored, so it lands whatever happens; the answer waits only briefly for it, so
            // that the agent's Kustomer status has usually followed by then.
            crate::crm::wait_finished(seq, finished, crate::crm::WRITE_BACK_WAIT).await;
        }
    }
    let waits = change
        .busy
        .as_ref()
        .filter(|_| change.next.is_some())
        .map(|busy| {
            format!(
                "You are {}: {} will apply after the call and wrap-up.",
                busy.name, target.name
            )
        });
    Ok(SetStatus { change, waits })
}

/// Cancels (`DELETE /api/v1/status/next`) the pending next status. The platform has no "no next
/// status": after wrap-up an agent without one becomes Available. So cancelling makes Available
/// the next status upstream, and the adapter shows none pending. Only while the agent is in a
/// system status (a call, wrap-up): otherwise Available would apply at once.
pub async fn cancel_next_status(
    state: &AppState,
    agent_id: i64,
) -> Result<Option<StatusView>, Error> {
    let known = state.events.state(agent_id);
    let statuses = state.ccai.user_statuses().await?;
    let in_system_status = known
        .status
        .as_ref()
        .and_then(|current| statuses.iter().find(|s| s.id == current.id))
        .is_some_and(|s| s.is_system());
    if known.next_status.is_none() || !in_system_status {
        return Err(Error::new(
            Code::NoNextStatus,
            "There is no next status to cancel.",
        ));
    }
    let Some(available) = statuses.iter().find(|s| s.id == 0) else {
        return Err(Error::new(
            Code::CcaiUnavailable,
            "The contact center lists no Available status.",
        ));
    };
    let result = state.status_setter.set(agent_id, &available.name).await?;
    let current = result.current_status.as_ref().map(|c| StatusView {
        id: c.id,
        name: c.name.clone().unwrap_or_default(),
    });
    state
        .events
        .publish(
            agent_id,
            AgentEvent::StatusChanged {
                status: current.clone(),
                next_status: None,
            },
        )
        .await?;
    Ok(current)
}

/// Publishes the agent's status as the platform has it (a directory read begun after the
/// sign-in asked, shared by the sign-ins of that moment), so the first snapshot of a new
/// stream carries it. A failure is logged: sign-in does not depend on it.
pub async fn seed_status(state: &AppState, agent_id: i64) {
    let status = match state.ccai.current_agent_status(agent_id).await {
        Ok(Some(status)) => status,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, agent_id, "cannot read the agent's status at sign-in");
            return;
        }
    };
    let name = match status.name {
        Some(name) => name,
        None => state
            .ccai
            .user_statuses()
            .await
            .ok()
            .and_then(|all| all.into_iter().find(|s| s.id == status.id))
            .map(|s| s.name)
            .unwrap_or_default(),
    };
    state.agent_status.touched(agent_id);
    let status = StatusView {
        id: status.id,
        name,
    };
    let published = state
        .events
        .publish_with(agent_id, move |current| {
            (current.status.as_ref() != Some(&status)).then(|| AgentEvent::StatusChanged {
                status: Some(status),
                next_status: current.next_status.clone(),
            })
        })
        .await;
    if let Err(error) = published {
        tracing::warn!(%error, agent_id, "the agent's status read at sign-in was not published");
    }
}

/// The status the agent shows for a platform status id, named as the tenant names it.
pub fn named(id: i64, statuses: &[crate::ccai::UserStatus]) -> StatusView {
    let name = statuses
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| {
            match id {
                IN_CALL => "In-call",
                IN_CHAT => "In-chat",
                WRAP_UP => "Wrap-up",
                _ => "Unknown",
            }
            .to_owned()
        });
    StatusView { id, name }
}

/// What the leader tab reports: the agent's Kustomer status changed.
pub use adapter_core::agent_api::KustomerStatusRequest as KustomerStatusChanged;

fn mapping_stale() -> Error {
    Error::new(Code::MappingStale, "The status this Kustomer status is mapped to no longer exists in the contact center; ask your administrator to update the mapping.")
}

/// What the policy decided for a Kustomer status change, and the change it applied.
pub struct Inherited {
    pub decision: adapter_core::status_policy::Decision,
    pub applied: Option<StatusChange>,
}

/// A Kustomer status change of `agent_id` (`POST /api/v1/kustomer-status`), decided by the
/// policy and applied.
pub async fn kustomer_status(
    state: &AppState,
    agent_id: i64,
    change: KustomerStatusChanged,
) -> Result<Inherited, Error> {
    if change.status_id.is_empty() || change.status_id.len() > 200 {
        return Err(Error::new(
            Code::InvalidStatus,
            "The Kustomer status id must be 1 to 200 characters.",
        ));
    }
    let at = crate::inheritance::clamp_at(change.at_ms, crate::clock::now_ms());
    let statuses = state.ccai.user_statuses().await?;
    let known = state.events.state(agent_id);
    let condition = state.inheritance.condition(&known, &statuses);
    let memory = state.inheritance.effective_memory(agent_id, &known);
    let decision = adapter_core::status_policy::on_kustomer_change(
        &state.inheritance.config(),
        &memory,
        condition,
        known.status.as_ref().map(|s| s.id),
        known.next_status.as_ref().map(|s| s.id),
        &change.status_id,
        at,
    );
    let target = match decision {
        adapter_core::status_policy::Decision::SetNow(id)
        | adapter_core::status_policy::Decision::SetNext(id) => {
            statuses.iter().find(|s| s.id == id)
        }
        adapter_core::status_policy::Decision::Ignore(_) => None,
    };
    let applied = match (decision, target) {
        (adapter_core::status_policy::Decision::Ignore(_), _) => None,
        (_, None) => return Err(mapping_stale()),
        (_, Some(target)) => {
            let change = match change_status(state, agent_id, &statuses, target).await {
                // The statuses are cached: the platform may have removed this one since they
                // were read. Read them again; gone, the mapping is stale, else the refusal stands.
                Err(refused) if refused.code == Code::CcaiRejected => {
                    state.ccai.forget_statuses().await;
                    let now = state.ccai.user_statuses().await?;
                    if now.iter().any(|s| s.id == target.id) {
                        return Err(refused);
                    }
                    return Err(mapping_stale());
                }
                other => other?,
            };
            state
                .inheritance
                .remember(
                    agent_id,
                    adapter_core::status_policy::Source::Kustomer,
                    at,
                    change.next.is_some(),
                )
                .await;
            Some(change)
        }
    };
    tracing::info!(agent_id, kustomer_status = %change.status_id, ?decision, "Kustomer status change");
    Ok(Inherited { decision, applied })
}
