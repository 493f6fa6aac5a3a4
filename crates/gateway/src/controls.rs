//! Call controls (answer, hold, mute, transfer, DTMF, ...). The public CCAI API has none; an
//! upstream may offer them as an extension (`/ext/call-control/v1`, which the simulator has).
//! The gateway discovers what the upstream offers at startup and every
//! `--capabilities-refresh-seconds` (5 minutes by default), lists it in
//! `GET /api/v1/me` as `capabilities`, and forwards only those, only for the agent's own call.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use adapter_core::agent_events::CallControl;
use serde::Deserialize;
use serde_json::json;

use crate::{
    ccai::{CcaiApi, CcaiError},
    error::{Code, Error},
    AppState,
};

/// How long the discovery at startup may hold the gateway up.
pub const STARTUP_DISCOVERY: Duration = Duration::from_secs(3);

/// The controls the upstream offers. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Capabilities(Arc<RwLock<Vec<CallControl>>>);

impl Capabilities {
    pub fn get(&self) -> Vec<CallControl> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn offers(&self, control: CallControl) -> bool {
        self.get().contains(&control)
    }

    fn set(&self, controls: Vec<CallControl>) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = controls;
    }

    /// Asks the upstream; any failure (404 on the public API included) means no controls.
    pub async fn discover<C: CcaiApi>(&self, client: &C) {
        let controls = match client.call_controls().await {
            Ok(names) => {
                let mut controls = Vec::new();
                for name in names {
                    match CallControl::parse(&name) {
                        Some(control) if !controls.contains(&control) => controls.push(control),
                        Some(_) => {}
                        None => tracing::info!(
                            control = name,
                            "ignoring a call control the adapter does not know"
                        ),
                    }
                }
                controls
            }
            Err(CcaiError::NotFound) => {
                tracing::info!(
                    "the CCAI upstream offers no call controls (no call-control extension)"
                );
                Vec::new()
            }
            Err(error) => {
                tracing::warn!(%error, "cannot discover the CCAI upstream's call controls; offering none for now");
                Vec::new()
            }
        };
        let previous = self.get();
        if previous != controls {
            let names: Vec<&str> = controls.iter().map(|c| c.as_str()).collect();
            tracing::info!(controls = ?names, "call controls offered to agents");
        }
        self.set(controls);
    }

    /// Discovers again every `every`, until the gateway stops.
    pub fn spawn_refresh<C: CcaiApi + 'static>(&self, client: Arc<C>, every: Duration) {
        let capabilities = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                capabilities.discover(client.as_ref()).await;
            }
        });
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    #[serde(default)]
    pub digits: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
}

/// DTMF: 1 to 32 of `0-9`, `*`, `#`.
pub fn valid_digits(digits: &str) -> bool {
    (1..=32).contains(&digits.len())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// A transfer target: not blank, at most 100 characters.
pub fn valid_target(target: &str) -> bool {
    !target.trim().is_empty() && target.chars().count() <= 100
}

fn unknown_call() -> Error {
    Error::new(Code::UnknownCall, "This is not your current or last call.")
}

/// A forwarded control: the call, the control, and what the upstream answered.
pub struct Forwarded {
    pub call_id: i64,
    pub control: CallControl,
    pub result: serde_json::Value,
}

/// Forwards `action` for the agent's own call `id` (`POST /api/v1/calls/{id}/{action}`), with
/// its JSON `body` (digits, a transfer target; may be empty).
pub async fn control(
    state: &AppState,
    agent_id: i64,
    id: &str,
    action: &str,
    body: &[u8],
) -> Result<Forwarded, Error> {
    let control = CallControl::parse(action)
        .ok_or_else(|| Error::new(Code::UnknownControl, "No such call control."))?;
    if !state.capabilities.offers(control) {
        return Err(Error::new(
            Code::ControlNotOffered,
            format!(
                "The contact center does not offer \"{}\" to the adapter; use the softphone.",
                control.as_str()
            ),
        ));
    }
    let call_id = id.parse::<i64>().map_err(|_| unknown_call())?;
    let agent = state.events.state(agent_id);
    let own = [agent.call.as_ref(), agent.last_call.as_ref()]
        .into_iter()
        .flatten()
        .any(|call| call.call_id == call_id);
    if !own {
        return Err(unknown_call());
    }
    let request: ControlBody = if body.iter().all(u8::is_ascii_whitespace) {
        ControlBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|error| Error::new(Code::InvalidFields, error.to_string()))?
    };
    let mut upstream = json!({ "agent_id": agent_id });
    match control {
        CallControl::Dtmf => {
            let digits = request.digits.unwrap_or_default();
            if !valid_digits(&digits) {
                return Err(Error::new(
                    Code::InvalidDigits,
                    "Send 1 to 32 keys: 0-9, * and #.",
                ));
            }
            upstream["digits"] = json!(digits);
        }
        CallControl::Transfer => {
            let target = request.target.unwrap_or_default();
            if !valid_target(&target) {
                return Err(Error::new(
                    Code::InvalidTarget,
                    "Say where to transfer the call (at most 100 characters).",
                ));
            }
            upstream["target"] = json!(target.trim());
        }
        _ => {}
    }
    // The platform's id is a call's or a chat's: the upstream is told which.
    let Some((channel, platform_id)) = state.store.platform_session(call_id).await? else {
        return Err(unknown_call());
    };
    let what = if channel == "chat" { "chats" } else { "calls" };
    match state
        .ccai
        .call_control(what, &platform_id, control.as_str(), &upstream)
        .await
    {
        Ok(result) => {
            tracing::info!(
                agent_id,
                call_id,
                control = control.as_str(),
                "call control forwarded"
            );
            Ok(Forwarded {
                call_id,
                control,
                result,
            })
        }
        Err(CcaiError::Conflict(message)) => Err(Error::new(Code::ControlRefused, message)),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_digits_and_transfer_targets() {
        for (digits, want) in [
            ("12#", true),
            ("*", true),
            (&"9".repeat(32)[..], true),
            (&"9".repeat(33)[..], false),
            ("", false),
            ("12a", false),
            ("1 2", false),
            ("١", false),
        ] {
            assert_eq!(valid_digits(digits), want, "{digits:?}");
        }
        for (target, want) in [
            ("Billing", true),
            ("+14155552671", true),
            ("   ", false),
            ("", false),
            (&"x".repeat(101)[..], false),
            (&"é".repeat(100)[..], true),
        ] {
            assert_eq!(valid_target(target), want, "{target:?}");
        }
    }
}
