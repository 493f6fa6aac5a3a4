//! Click-to-call: the agent's call placed through the CCAI Platform, with the platform's
//! documented refusals in words an agent can act on.

use adapter_core::agent_events::{AgentEvent, CallState, CallView, Direction};
use serde::Deserialize;

use crate::{
    ccai::{CallPlaced, CcaiApi, CcaiError, PlaceCall},
    error::{Code, Error},
    sessions::Session,
    AppState,
};

/// A placed call: the gateway's id for it, the platform's status, and whether the agent must
/// finish it in the adapter.
pub struct Placed {
    pub call_id: i64,
    pub status: Option<String>,
    pub needs_agent: bool,
}

#[derive(Deserialize)]
pub struct NewCall {
    /// E.164, as the dial pad showed it.
    pub number: String,
    /// The Kustomer conversation the call belongs to.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// ISO 639-1.
    #[serde(default)]
    pub lang: Option<String>,
}

/// The platform's documented refusals of a call, in words an agent can act on.
pub fn call_refused(message: String) -> Error {
    match message.as_str() {
        "Agent is not available to take this call" => Error::new(Code::AgentNotAvailable, "You are not Available in the contact center: set your status to Available to place a call.",
        ),
        "Not a valid agent email" => Error::new(Code::UnknownAgent, "The contact center does not know your email address; ask your administrator.",
        ),
        "end_user_number is not well-formed" => Error::new(Code::InvalidNumber, "The contact center cannot dial this number; check it in the dial pad.",
        ),
        _ => Error::new(Code::CcaiRejected, message),
    }
}

/// Click-to-call (`POST /api/v1/calls`), for the signed-in agent only: the call is placed as
/// the agent and shown dialing on the agent's stream.
pub async fn place_call(
    state: &AppState,
    session: &Session,
    request: NewCall,
) -> Result<Placed, Error> {
    let number = request.number.trim();
    // Checked here too, whatever the widget did: E.164, valid in libphonenumber's plan.
    if let Err(why) = crate::phone::check_e164(number) {
        return Err(Error::new(
            Code::InvalidNumber,
            format!("This number cannot be dialled ({why}); check it in the dial pad."),
        ));
    }
    let call = PlaceCall {
        agent_email: session.agent_email.clone(),
        end_user_number: Some(number.to_owned()),
        ticket_id: request.conversation_id.filter(|c| !c.trim().is_empty()),
        lang: request.lang,
    };
    let placed = match state.ccai.place_call(&call).await {
        Ok(placed) => placed,
        Err(CcaiError::Rejected(message)) => return Err(call_refused(message)),
        Err(other) => return Err(other.into()),
    };
    tracing::info!(agent = %call.agent_email, ?placed, "outbound call placed");
    let (CallPlaced::Created(info) | CallPlaced::NeedsAgent(info)) = &placed;
    // The platform's events for this call will say nothing of its direction: remember it.
    let call_id = state.store.session_id("call", &info.id, true).await?;
    let agent_id = session.ccai_agent_id;
    // The platform's own events for this call may have been faster than its answer: the call
    // is shown dialing only when the stream does not show it further along already.
    let dialing = CallView {
        call_id,
        direction: Direction::Outbound,
        state: CallState::Dialing,
        number: Some(number.to_owned()),
        conversation_id: call.ticket_id.clone(),
        needs_agent: matches!(placed, CallPlaced::NeedsAgent(_)),
        ..CallView::default()
    };
    state
        .events
        .publish_with(agent_id, move |known| {
            let further = [known.call.as_ref(), known.last_call.as_ref()]
                .into_iter()
                .flatten()
                .any(|c| c.call_id == call_id);
            (!further).then_some(AgentEvent::Call(dialing))
        })
        .await?;
    Ok(match placed {
        CallPlaced::Created(info) => Placed {
            call_id,
            status: info.status,
            needs_agent: false,
        },
        CallPlaced::NeedsAgent(info) => Placed {
            call_id,
            status: info.status,
            needs_agent: true,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_refusals_become_agent_words() {
        let cases = [
            (
                "Agent is not available to take this call",
                Code::AgentNotAvailable,
                "agent_not_available",
            ),
            (
                "Not a valid agent email",
                Code::UnknownAgent,
                "unknown_agent",
            ),
            (
                "end_user_number is not well-formed",
                Code::InvalidNumber,
                "invalid_number",
            ),
            ("Something new", Code::CcaiRejected, "ccai_rejected"),
        ];
        for (message, code, wire) in cases {
            let error = call_refused(message.into());
            assert_eq!((error.code, error.code.as_str()), (code, wire), "{message}");
        }
    }
}
