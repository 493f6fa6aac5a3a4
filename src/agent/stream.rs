//! The agent's live event stream from the gateway (`GET /api/v1/events`, a WebSocket): the
//! auth message (the token goes in the first message, never in the URL), resuming after the
//! last event seen, reconnecting with backoff, the silence watchdog, and applying what the
//! gateway sends to the agent's state.

use std::time::Duration;

use adapter_core::{
    agent_events::{close, StreamAuth, StreamMessage},
    backoff::Backoff,
    connection::{Connection, ConnectionState},
};
use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast};

use super::{now_ms, Agent};
use adapter_core::json_text::ToJson;

/// localStorage key of this browser's id: the gateway counts an agent's browsers with it (all
/// tabs of one browser share it).
pub const BROWSER_KEY: &str = "ccai-adapter.browser";
/// No message (the gateway sends a heartbeat every 15 s) for this long: the link is dead.
const SILENCE_LIMIT_MS: f64 = 40_000.0;
/// How often the watchdog looks for silence.
pub(super) const WATCHDOG_MS: u32 = 10_000;
/// After the gateway refused the stream as one too many (4029), wait at least this long (and
/// up to 30 s more, so the agent's tabs do not all come back at once).
const TOO_MANY_STREAMS_WAIT_MS: u64 = 60_000;

/// The live socket and the callbacks it holds; dropping it closes the socket.
struct LiveSocket {
    socket: web_sys::WebSocket,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_close: Closure<dyn FnMut(web_sys::CloseEvent)>,
    _on_open: Closure<dyn FnMut()>,
}

impl Drop for LiveSocket {
    fn drop(&mut self) {
        self.socket.set_onmessage(None);
        self.socket.set_onclose(None);
        self.socket.set_onopen(None);
        let _ = self.socket.close();
    }
}

/// Where the stream is, to resume it after a drop.
#[derive(Default)]
struct Position {
    epoch: Option<u64>,
    seq: u64,
    last_message_ms: f64,
}

/// The stream's plumbing, kept in the agent's [`super::Plumbing`].
pub(super) struct Stream {
    link: Connection,
    socket: Option<LiveSocket>,
    position: Position,
    /// Bumped at every (re)connection and stop: callbacks of an older socket do nothing.
    generation: u64,
    reconnect: Option<gloo_timers::callback::Timeout>,
}

impl Stream {
    pub(super) fn new(backoff: Backoff) -> Self {
        Stream {
            link: Connection::new(backoff, Duration::from_secs(15)),
            socket: None,
            position: Position::default(),
            generation: 0,
            reconnect: None,
        }
    }

    /// Closes the socket and cancels a pending reconnection; the callbacks of the closed
    /// socket do nothing from now on.
    pub(super) fn stop(&mut self) {
        self.generation += 1;
        self.socket = None;
        self.reconnect = None;
    }

    /// Forgets where the stream was (a new session starts from a snapshot).
    pub(super) fn forget_position(&mut self) {
        self.position = Position::default();
    }
}

/// The WebSocket URL of the gateway at `base`.
pub(super) fn ws_url(base: &str) -> String {
    match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => base.to_owned(),
    }
}

impl Agent {
    /// This browser's id, made once and kept (in memory when storage is blocked).
    fn browser_id(&self) -> String {
        self.plumbing
            .try_update_value(|p| {
                if let Some(id) = p.store.get(BROWSER_KEY).filter(|id| {
                    !id.is_empty()
                        && id.len() <= 64
                        && id.bytes().all(|b| b.is_ascii_alphanumeric())
                }) {
                    return id;
                }
                let id = format!(
                    "{:013x}{:013x}",
                    (js_sys::Math::random() * 4_503_599_627_370_496.0) as u64,
                    (js_sys::Math::random() * 4_503_599_627_370_496.0) as u64
                );
                let _ = p.store.set(BROWSER_KEY, &id);
                id
            })
            .unwrap_or_default()
    }

    /// (Re)opens the event stream, resuming after the last event seen.
    pub(super) fn connect(self) {
        let Some(token) = self.token() else { return };
        let Ok(base) = self.base() else { return };
        let Some((generation, epoch, seq)) = self.plumbing.try_update_value(|p| {
            let stream = &mut p.stream;
            stream.stop();
            stream.link.probe_started();
            (
                stream.generation,
                stream.position.epoch,
                stream.position.seq,
            )
        }) else {
            return;
        };
        self.publish_link();
        let browser = self.browser_id();
        // The token goes in the first message, never in the URL (proxies and logs keep URLs).
        let url = format!("{}/api/v1/events", ws_url(&base));
        let auth = StreamAuth::new(token, epoch.map(|epoch| (epoch, seq)), Some(browser));
        let socket = match web_sys::WebSocket::new(&url) {
            Ok(socket) => socket,
            Err(error) => return self.dropped(generation, format!("{error:?}"), None),
        };
        let on_open = Closure::<dyn FnMut()>::new({
            let socket = socket.clone();
            move || {
                if !self.current(generation) {
                    return;
                }
                let sent = socket
                    .send_with_str(&auth.to_json())
                    .map_err(|e| format!("{e:?}"));
                if let Err(error) = sent {
                    return self.dropped(generation, format!("auth not sent: {error}"), None);
                }
                // Connected once the gateway has accepted the auth and said something (see
                // `receive`): a gateway that closes every stream right after it opens must not
                // reset the backoff into a tight loop.
                self.plumbing
                    .update_value(|p| p.stream.position.last_message_ms = now_ms());
            }
        });
        let on_message = Closure::<dyn FnMut(_)>::new(move |event: web_sys::MessageEvent| {
            if !self.current(generation) {
                return;
            }
            match event.data().as_string() {
                Some(text) => self.receive(&text),
                None => self.log.warn("the event stream sent a non-text frame"),
            }
        });
        let on_close = Closure::<dyn FnMut(_)>::new(move |event: web_sys::CloseEvent| {
            let reason = format!("closed ({} {})", event.code(), event.reason());
            self.dropped(generation, reason, Some(event.code()));
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.plumbing.update_value(|p| {
            p.stream.socket = Some(LiveSocket {
                socket,
                _on_message: on_message,
                _on_close: on_close,
                _on_open: on_open,
            });
        });
    }

    fn current(&self, generation: u64) -> bool {
        self.plumbing
            .try_with_value(|p| p.stream.generation == generation)
            .unwrap_or(false)
    }

    fn publish_link(&self) {
        if let Some(state) = self
            .plumbing
            .try_with_value(|p| p.stream.link.state().clone())
        {
            let _ = self.link.try_set(state);
        }
    }

    /// The socket of `generation` closed: reconnect with backoff, or sign out when the gateway
    /// ended the session (close code 4001); when it refused the stream as one too many (4029),
    /// tell the agent and wait long before trying again.
    fn dropped(self, generation: u64, reason: String, code: Option<u16>) {
        if !self.current(generation) {
            return;
        }
        if code == Some(close::SESSION_ENDED) {
            // The token was rotated elsewhere or expired: a refresh tells which.
            leptos::task::spawn_local(async move { self.refresh().await });
            return;
        }
        let too_many = code == Some(close::TOO_MANY_STREAMS);
        if too_many {
            let _ = self.too_many_streams.try_set(true);
        }
        let wait = self.plumbing.try_update_value(|p| {
            p.stream.socket = None;
            let wait = p
                .stream
                .link
                .probe_failed(reason.clone(), js_sys::Math::random());
            if too_many {
                // Others hold the places: trying again at once would only be refused again.
                wait.max(Duration::from_millis(
                    TOO_MANY_STREAMS_WAIT_MS + (js_sys::Math::random() * 30_000.0) as u64,
                ))
            } else {
                wait
            }
        });
        self.publish_link();
        let Some(wait) = wait else { return };
        let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
        self.log.warn(format!(
            "event stream: {reason}; trying again in {} s",
            wait_ms.div_ceil(1000)
        ));
        let timer = gloo_timers::callback::Timeout::new(wait_ms, move || {
            if self.current(generation) {
                self.connect();
            }
        });
        self.plumbing
            .update_value(|p| p.stream.reconnect = Some(timer));
    }

    /// A half-open connection sends nothing: after [`SILENCE_LIMIT_MS`], start again.
    pub(super) fn check_silence(self) {
        let stale = self.plumbing.try_with_value(|p| {
            let stream = &p.stream;
            (stream.socket.is_some()
                && stream.position.last_message_ms > 0.0
                && now_ms() - stream.position.last_message_ms > SILENCE_LIMIT_MS)
                .then_some(stream.generation)
        });
        if let Some(Some(generation)) = stale {
            self.dropped(generation, "no heartbeat".into(), None);
        }
    }

    /// One message of the stream: a snapshot of the agent's state, an event to apply to it (in
    /// order, once), a heartbeat, or how many browsers the agent has open.
    fn receive(&self, text: &str) {
        let message = match adapter_core::agent_events::decode_message(text) {
            Ok(message) => message,
            Err(error) => {
                self.log
                    .warn(format!("event stream: unreadable message: {error}"));
                return;
            }
        };
        if self.too_many_streams.get_untracked() {
            let _ = self.too_many_streams.try_set(false);
        }
        let position = self.plumbing.try_update_value(|p| {
            let stream = &mut p.stream;
            stream.position.last_message_ms = now_ms();
            let first = *stream.link.state() != ConnectionState::Connected;
            if first {
                stream.link.probe_succeeded();
            }
            (first, stream.position.epoch, stream.position.seq)
        });
        let Some((first, epoch, seq)) = position else {
            return;
        };
        if first {
            self.publish_link();
        }
        match message {
            StreamMessage::Snapshot {
                epoch: new_epoch,
                seq: new_seq,
                state,
            } => {
                self.state.set(state);
                self.plumbing.update_value(|p| {
                    p.stream.position.epoch = Some(new_epoch);
                    p.stream.position.seq = new_seq;
                });
            }
            StreamMessage::Event {
                epoch: event_epoch,
                seq: event_seq,
                event,
            } => {
                if epoch.is_some_and(|e| e != event_epoch) || event_seq <= seq && epoch.is_some() {
                    return;
                }
                self.state.update(|state| event.apply(state));
                self.plumbing.update_value(|p| {
                    p.stream.position.epoch = Some(event_epoch);
                    p.stream.position.seq = event_seq;
                });
            }
            StreamMessage::Heartbeat { .. } => {}
            StreamMessage::Presence { browsers } => {
                let _ = self.other_browsers.try_set(browsers >= 2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls_follow_the_gateway_scheme() {
        assert_eq!(ws_url("https://gw.example.com"), "wss://gw.example.com");
        assert_eq!(ws_url("http://127.0.0.1:8700"), "ws://127.0.0.1:8700");
    }
}
