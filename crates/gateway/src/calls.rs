//! Click-to-call: the agent's call placed through the CCAI Platform, with the platform's
//! documented refusals in words an agent can act on.

use adapter_core::agent_events::{AgentEvent, CallState, CallView, Direction};

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

/// The agent's click-to-call (`POST /api/v1/calls`).
pub use adapter_core::agent_api::PlaceCallRequest as NewCall;

/// A Kustomer conversation id as the host gives it (Kustomer's are 24 hex digits; anything
/// short and plain is let through, nothing that could carry more than an id upstream).
fn is_conversation_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A language tag as the platform takes it: ISO 639 letters, then optional subtags
/// (`fr`, `fr-CA`, `zh-Hant-TW`), at most 35 characters.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    tag.len() <= 35
        && primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
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
    let ticket_id = request
        .conversation_id
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(id) = &ticket_id {
        if !is_conversation_id(id) {
            return Err(Error::new(
                Code::InvalidFields,
                "conversation_id must be a Kustomer conversation id (1 to 64 letters, digits, dashes or underscores).",
            ));
        }
    }
    let lang = request
        .lang
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty());
    if let Some(lang) = &lang {
        if !is_language_tag(lang) {
            return Err(Error::new(
                Code::InvalidFields,
                "lang must be a language code such as \"en\" or \"fr-CA\".",
            ));
        }
    }
    let call = PlaceCall {
        agent_email: session.agent_email.clone(),
        end_user_number: Some(number.to_owned()),
        ticket_id,
        lang,
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

    #[test]
    fn only_plain_ids_and_language_tags_go_upstream() {
        assert!(is_conversation_id("5f3c2a9e8b7d6c5b4a392817"));
        assert!(!is_conversation_id(&"a".repeat(65)));
        assert!(!is_conversation_id("abc/../def"));
        assert!(!is_conversation_id(""));
        for good in ["en", "fr", "fr-CA", "zh-Hant-TW"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "english please",
            "fr_CA",
            "fr-",
            &"a-".repeat(30),
            "fr-CA\nX: y",
        ] {
            assert!(!is_language_tag(bad), "{bad:?}");
        }
    }
}
