//! The adapter's pure core: domain logic with no I/O, shared by the widget (wasm32) and the
//! gateway (native), and tested natively.
//!
//! - [`agent_api`]: the agent API's request and response bodies, which the gateway's handlers
//!   and the widget share.
//! - [`agent_events`]: the gateway's event stream to an adapter (sequence, resume, snapshot).
//! - [`lang`]: which of the supported languages to speak, from the host's or browser's preferences.
//! - [`backoff`]: retry delays for anything that talks over a network.
//! - [`connection`]: the state of the widget's link to the gateway.
//! - [`crm`]: the CRM sync rules: session events in, Kustomer operations out.
//! - [`health`]: the gateway's `/healthz` wire type.
//! - [`phone`]: phone numbers to dial, normalised to E.164.
//! - [`host_protocol`]: protocol v1 between the host page (Kustomer) and the adapter.
//! - [`iso_time`]: the platform's ISO-8601 UTC timestamps to and from Unix milliseconds.
//! - [`ccai_events`]: the CCAI Platform's External Session Events as documented (the triggers).
//! - [`manager`]: the Manager API's call and chat resources (the source of truth), and how an
//!   event and its details become the gateway's own session events.
//! - [`session_webhook`]: the gateway's own session events (what the stream and the CRM rules
//!   read), also the body of the simulator's extension for what the public APIs do not document.
//! - [`origins`]: the Kustomer origins allowed to host the adapter (CSP `frame-ancestors` syntax).
//! - [`rate`]: a token bucket, to bound work done for untrusted senders.
//! - [`tabs`]: one leader among the tabs of the same agent.
//! - [`status_policy`]: Kustomer → CCAI status inheritance and the write-back, as decisions.

pub mod agent_api;
pub mod agent_events;
pub mod backoff;
pub mod ccai_events;
pub mod connection;
pub mod crm;
pub mod health;
pub mod host_protocol;
pub mod iso_time;
pub mod json_fields;
pub mod json_text;
pub mod lang;
pub mod manager;
pub mod origins;
pub mod phone;
pub mod rate;
pub mod session_webhook;
pub mod status_policy;
pub mod tabs;

#[cfg(test)]
mod testing;
