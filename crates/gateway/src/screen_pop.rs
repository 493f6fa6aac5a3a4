//! Screen pops: a session's Kustomer conversation, once the CRM sync knows it, goes on the
//! agent's call, for the adapters to open. The CRM sync says so as it resolves each one; and
//! because that news lives in memory, the calls the agents are in (or just had) are also matched
//! against what the store says the CRM sync resolved: at start (a restart between the two loses
//! nothing) and whenever the news came faster than it was published.

use adapter_core::agent_events::AgentEvent;
use tokio::sync::broadcast::error::RecvError;

use crate::{
    crm::{CrmSync, Resolved},
    events::EventHub,
};

/// Publishes screen pops until the gateway stops.
pub fn spawn(crm: CrmSync, events: EventHub) {
    let mut resolved = crm.resolved();
    tokio::spawn(async move {
        catch_up(&crm, &events).await;
        loop {
            match resolved.recv().await {
                Ok(found) => publish(&events, found).await,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "screen pops came faster than they were published: reading them from the store");
                    catch_up(&crm, &events).await;
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

/// Every agent's current or last call without its conversation, matched against the store.
async fn catch_up(crm: &CrmSync, events: &EventHub) {
    for agent_id in events.agent_ids() {
        let state = events.state(agent_id);
        let calls = [state.call, state.last_call]
            .into_iter()
            .flatten()
            .filter(|call| call.conversation_id.is_none());
        for call in calls {
            match crm.resolved_of(call.call_id).await {
                Ok(Some(found)) => publish(events, found).await,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, call_id = call.call_id, "cannot read a call's conversation for its screen pop")
                }
            }
        }
    }
}

/// Puts the conversation on the call as the stream shows it now (not as it was when found).
async fn publish(events: &EventHub, found: Resolved) {
    let Some((agent_id, _)) = events.call_owner(found.session_id) else {
        return;
    };
    let published = events
        .publish_with(agent_id, move |state| {
            let mut call = [state.call.as_ref(), state.last_call.as_ref()]
                .into_iter()
                .flatten()
                .find(|c| c.call_id == found.session_id)?
                .clone();
            if call.conversation_id.as_deref() == Some(found.conversation_id.as_str())
                && call.customer_id.as_deref() == Some(found.customer_id.as_str())
            {
                return None;
            }
            call.customer_id = Some(found.customer_id);
            call.conversation_id = Some(found.conversation_id);
            Some(AgentEvent::Call(call))
        })
        .await;
    if let Err(error) = published {
        tracing::error!(agent_id, %error, "screen pop not published");
    }
}
