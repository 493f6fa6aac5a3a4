//! Protocol v1 over `window.postMessage`, pinned both ways to the host's origin.
//!
//! A message is read only when it comes from the host window *and* the host origin; then within
//! the flood limits; then as JSON text under the size cap; then decoded. Every refusal is a
//! debug-log line; refusals of host messages that carried an `id` are answered with `rejected`.

use std::cell::{Cell, RefCell};

use adapter_core::{
    host_protocol::{self, AdapterToHost, DecodeError, MAX_MESSAGE_BYTES},
    rate::TokenBucket,
};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

use super::{BridgeError, FloodLimits, Inbox};
use crate::debug_log::DebugLog;

/// At most one "ignored" or "dropped" line per this many milliseconds, so a flood cannot
/// flood the log either.
const NOTE_EVERY_MS: f64 = 1_000.0;

/// Counts events and lets one note through per [`NOTE_EVERY_MS`].
#[derive(Default)]
struct Throttled {
    count: Cell<u32>,
    last_ms: Cell<Option<f64>>,
}

impl Throttled {
    /// Counts one event; returns how many were counted since the last note when a note is due.
    fn due(&self, now_ms: f64) -> Option<u32> {
        self.count.set(self.count.get().saturating_add(1));
        let due = self
            .last_ms
            .get()
            .is_none_or(|last| now_ms - last >= NOTE_EVERY_MS);
        due.then(|| {
            self.last_ms.set(Some(now_ms));
            self.count.replace(0)
        })
    }
}

pub struct PostMessageTransport {
    own: web_sys::Window,
    host: web_sys::Window,
    host_origin: String,
    listener: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl PostMessageTransport {
    pub fn start(
        own: web_sys::Window,
        host: web_sys::Window,
        host_origin: String,
        inbox: Inbox,
        log: DebugLog,
        flood: FloodLimits,
    ) -> Result<Self, JsValue> {
        let bucket = RefCell::new(TokenBucket::new(flood.capacity, flood.per_second));
        let foreign = Throttled::default();
        let dropped = Throttled::default();
        let (host_for_check, origin_for_check) = (host.clone(), host_origin.clone());
        let (host_for_reply, origin_for_reply) = (host.clone(), host_origin.clone());
        let reply = move |id: &str, error: &DecodeError| {
            let message = AdapterToHost::Rejected {
                code: error.code().into(),
                reason: error.to_string(),
            };
            let raw = host_protocol::encode(None, Some(id), &message);
            let _ = host_for_reply.post_message(&JsValue::from_str(&raw), &origin_for_reply);
        };
        let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let now = js_sys::Date::now();
                let origin = event.origin();
                let from_host = origin == origin_for_check
                    && event
                        .source()
                        .is_some_and(|source| js_sys::Object::is(&source, host_for_check.as_ref()));
                if !from_host {
                    if let Some(n) = foreign.due(now) {
                        log.warn(format!(
                        "ignored {n} message(s) not from the host (last from origin {origin:?})"
                    ));
                    }
                    return;
                }
                if !bucket.borrow_mut().try_take(now) {
                    if let Some(n) = dropped.due(now) {
                        log.warn(format!(
                            "dropped {n} host message(s): more than {} per second",
                            flood.per_second
                        ));
                    }
                    return;
                }
                let data = event.data();
                let Some(text) = data.dyn_ref::<js_sys::JsString>() else {
                    log.warn("refused a host message (not_json): protocol messages are JSON text, not objects");
                    return;
                };
                // UTF-16 length, checked before the text is copied; decode() checks bytes again.
                if text.length() as usize > MAX_MESSAGE_BYTES {
                    log.warn(format!(
                    "refused a host message (too_large): {} characters is over the {MAX_MESSAGE_BYTES}-byte limit",
                    text.length()
                ));
                    return;
                }
                let raw = String::from(text);
                match host_protocol::decode(&raw) {
                    Ok(envelope) => inbox.deliver(envelope),
                    Err(DecodeError::NotOurs) => {
                        log.info("ignored a host message that is not ours")
                    }
                    Err(error) => {
                        log.warn(format!(
                            "refused a host message ({}): {error}",
                            error.code()
                        ));
                        if let Some(id) = host_protocol::refused_id(&raw) {
                            reply(&id, &error);
                        }
                    }
                }
            },
        );
        own.add_event_listener_with_callback("message", listener.as_ref().unchecked_ref())?;
        Ok(PostMessageTransport {
            own,
            host,
            host_origin,
            listener,
        })
    }

    pub fn host_origin(&self) -> &str {
        &self.host_origin
    }

    /// Posts to the host window, to the host origin only.
    pub fn post(
        &self,
        id: Option<&str>,
        reply_to: Option<&str>,
        message: &AdapterToHost,
    ) -> Result<(), BridgeError> {
        let raw = host_protocol::encode(id, reply_to, message);
        self.host
            .post_message(&JsValue::from_str(&raw), &self.host_origin)
            .map_err(|e| BridgeError::Send(format!("{e:?}")))
    }
}

impl Drop for PostMessageTransport {
    fn drop(&mut self) {
        let _ = self
            .own
            .remove_event_listener_with_callback("message", self.listener.as_ref().unchecked_ref());
    }
}
