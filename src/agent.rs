//! The signed-in agent: the session (kept across reloads, refreshed before it expires), the
//! live event stream from the gateway (a WebSocket that resumes where it left off), and the
//! agent API calls behind the status menu, Call and the call controls.

use std::time::Duration;

use adapter_core::{
    agent_events::{close, AgentState, CallControl, StatusView, StreamAuth, StreamMessage},
    backoff::Backoff,
    connection::{Connection, ConnectionState},
    host_protocol::KustomerUser,
};
use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::{closure::Closure, JsCast};

use crate::{debug_log::DebugLog, gateway::GatewayError, storage::KeyValueStore};

/// localStorage key of the session, so a reload (even mid-call) keeps the agent signed in.
pub const SESSION_KEY: &str = "ccai-adapter.session";
/// localStorage key of this browser's id: the gateway counts an agent's browsers with it (all
/// tabs of one browser share it).
pub const BROWSER_KEY: &str = "ccai-adapter.browser";
/// Refresh this long before the session expires.
const REFRESH_MARGIN_MS: i64 = 60_000;
/// No message (the gateway sends a heartbeat every 15 s) for this long: the link is dead.
const SILENCE_LIMIT_MS: f64 = 40_000.0;
/// After the gateway refused the stream as one too many (4029), wait at least this long (and
/// up to 30 s more, so the agent's tabs do not all come back at once).
const TOO_MANY_STREAMS_WAIT_MS: u64 = 60_000;

pub use adapter_core::agent_api::{
    InheritanceSettings, InheritanceView, KustomerStatus, Session, StatusOption,
};
use adapter_core::agent_api::{
    Inherited, KustomerStatusRequest, Me, Note, PlaceCallRequest, SetStatusRequest, SignInRequest,
    SignInUser, Statuses,
};

pub use crate::gateway::ApiFailure;

/// Why the session must be dropped: the gateway no longer knows it.
fn is_session_gone(failure: &ApiFailure) -> bool {
    failure.status == 401
}

/// One agent API request (see [`crate::gateway::request`]).
pub use crate::gateway::request as api;
use crate::gateway::{body_of, decode, Method};

/// What the agent is told after an action: good news, a wait, or a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The status is now this one.
    StatusSet(String),
    /// The platform is placing a call to this number.
    Calling(String),
    /// Accepted, with what the agent must know (e.g. "applies after the call").
    Pending(String),
    /// The Kustomer status (named) was inherited now.
    KustomerApplied(String),
    /// The Kustomer status (named) waits as the next status.
    KustomerNext(String),
    /// The Kustomer status (named) was not inherited, and the policy's reason code.
    KustomerIgnored { name: String, why: String },
    /// Refused: the gateway's error code (worded in the agent's language by
    /// [`crate::i18n::refusal`]) and its own sentence.
    Failed { code: String, message: String },
}

impl Outcome {
    fn failed(failure: ApiFailure) -> Self {
        Outcome::Failed {
            code: failure.code,
            message: failure.message,
        }
    }
}

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
struct StreamPosition {
    epoch: Option<u64>,
    seq: u64,
    last_message_ms: f64,
}

struct Plumbing {
    base: Result<String, GatewayError>,
    store: KeyValueStore,
    link: Connection,
    socket: Option<LiveSocket>,
    position: StreamPosition,
    /// Bumped at every (re)connection and sign-out: callbacks of an older socket do nothing.
    generation: u64,
    reconnect: Option<gloo_timers::callback::Timeout>,
    refresh: Option<gloo_timers::callback::Timeout>,
    _watchdog: Option<gloo_timers::callback::Interval>,
}

/// The signed-in agent and everything the widget shows of it. `Copy`: hand it to any view.
#[derive(Clone, Copy)]
pub struct Agent {
    pub session: RwSignal<Option<Session>>,
    pub state: RwSignal<AgentState>,
    pub statuses: RwSignal<Vec<StatusOption>>,
    pub capabilities: RwSignal<Vec<CallControl>>,
    /// The event stream's link (connected, reconnecting).
    pub link: RwSignal<ConnectionState>,
    /// The result of the agent's last action, shown until the next one.
    pub outcome: RwSignal<Option<Outcome>>,
    /// Status inheritance, once loaded.
    pub inheritance: RwSignal<Option<InheritanceView>>,
    /// An action is in flight (buttons wait).
    pub busy: RwSignal<bool>,
    /// How many browsers have this agent's adapter open (more than one is worth saying).
    pub browsers: RwSignal<u32>,
    /// The gateway refused the stream: too many are open for the agent or from this address.
    pub too_many_streams: RwSignal<bool>,
    log: DebugLog,
    plumbing: StoredValue<Plumbing, LocalStorage>,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The session of `store`, if one is kept and not expired.
pub fn restore(store: &KeyValueStore) -> Option<Session> {
    let text = store.get(SESSION_KEY)?;
    let session: Session = serde_json::from_str(&text).ok()?;
    (session.expires_at_ms as f64 > now_ms()).then_some(session)
}

/// This browser's id, made once and kept (in memory when storage is blocked).
fn browser_id(plumbing: &mut Plumbing) -> String {
    if let Some(id) = plumbing.store.get(BROWSER_KEY).filter(|id| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
    }) {
        return id;
    }
    let id = format!(
        "{:013x}{:013x}",
        (js_sys::Math::random() * 4_503_599_627_370_496.0) as u64,
        (js_sys::Math::random() * 4_503_599_627_370_496.0) as u64
    );
    let _ = plumbing.store.set(BROWSER_KEY, &id);
    id
}

fn ws_url(base: &str) -> String {
    match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => base.to_owned(),
    }
}

/// The BroadcastChannel on which the settings page (same origin, same browser) says it saved
/// status inheritance, so that the widget reads it again at once.
pub const SETTINGS_CHANNEL: &str = "ccai-adapter.settings";

/// Reads status inheritance again whenever the settings page says it saved it.
pub fn use_settings_changes(agent: Agent) {
    let Ok(channel) = web_sys::BroadcastChannel::new(SETTINGS_CHANNEL) else {
        return;
    };
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
        agent
            .log
            .info("the settings page saved status inheritance: reading it again");
        leptos::task::spawn_local(agent.load_inheritance());
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let held = StoredValue::new_local(Some((channel, on_message)));
    on_cleanup(move || {
        if let Some((channel, _)) = held.try_update_value(Option::take).flatten() {
            channel.set_onmessage(None);
            channel.close();
        }
    });
}

/// Tells the widgets of this browser that status inheritance was saved.
pub fn announce_settings_saved() {
    if let Ok(channel) = web_sys::BroadcastChannel::new(SETTINGS_CHANNEL) {
        let _ = channel.post_message(&wasm_bindgen::JsValue::from_str("status-inheritance"));
        channel.close();
    }
}

/// Signs the agent in from the stored session, if any, and keeps the stream running.
pub fn use_agent(
    base: Result<String, GatewayError>,
    store: KeyValueStore,
    backoff: Backoff,
    log: DebugLog,
) -> Agent {
    let restored = restore(&store);
    let agent = Agent {
        session: RwSignal::new(None),
        state: RwSignal::new(AgentState::default()),
        statuses: RwSignal::new(Vec::new()),
        capabilities: RwSignal::new(Vec::new()),
        link: RwSignal::new(ConnectionState::Connecting { attempt: 1 }),
        outcome: RwSignal::new(None),
        inheritance: RwSignal::new(None),
        busy: RwSignal::new(false),
        browsers: RwSignal::new(1),
        too_many_streams: RwSignal::new(false),
        log,
        plumbing: StoredValue::new_local(Plumbing {
            base,
            store,
            link: Connection::new(backoff, Duration::from_secs(15)),
            socket: None,
            position: StreamPosition::default(),
            generation: 0,
            reconnect: None,
            refresh: None,
            _watchdog: None,
        }),
    };
    let watchdog = gloo_timers::callback::Interval::new(10_000, move || agent.check_silence());
    agent
        .plumbing
        .update_value(|p| p._watchdog = Some(watchdog));
    on_cleanup(move || agent.stop());
    if let Some(session) = restored {
        agent.start(session);
    }
    agent
}

impl Agent {
    fn base(&self) -> Result<String, ApiFailure> {
        self.plumbing
            .try_with_value(|p| p.base.clone())
            .unwrap_or_else(|| Err(GatewayError::BadUrl("(disposed)".into())))
            .map_err(ApiFailure::transport)
    }

    fn token(&self) -> Option<String> {
        self.session
            .with_untracked(|s| s.as_ref().map(|s| s.token.clone()))
    }

    /// Signs in as `email`, who must be the Kustomer user `user`.
    pub async fn sign_in(
        self,
        email: String,
        password: String,
        user: KustomerUser,
    ) -> Result<(), ApiFailure> {
        let base = self.base()?;
        let body = body_of(&SignInRequest {
            email: email.trim().to_owned(),
            password: (!password.is_empty()).then_some(password),
            kustomer_user: SignInUser {
                id: user.id,
                email: user.email,
            },
        });
        let value = api(&base, Method::Post, "/sessions", None, body.as_deref()).await?;
        let session: Session = decode(value)?;
        self.log
            .info(format!("signed in as {}", session.agent_email));
        self.start(session);
        Ok(())
    }

    /// Signs out here and at the gateway.
    pub async fn sign_out(self) {
        if let (Ok(base), Some(token)) = (self.base(), self.token()) {
            let _ = api(&base, Method::Delete, "/sessions", Some(&token), None).await;
        }
        self.end_session();
    }

    /// Forgets the session (the gateway ended it, or the agent signed out).
    fn end_session(&self) {
        self.stop();
        self.plumbing.update_value(|p| {
            let _ = p.store.remove(SESSION_KEY);
            p.position = StreamPosition::default();
        });
        let _ = self.session.try_set(None);
        let _ = self.state.try_set(AgentState::default());
        let _ = self.capabilities.try_set(Vec::new());
        let _ = self.too_many_streams.try_set(false);
    }

    fn stop(&self) {
        self.plumbing.try_update_value(|p| {
            p.generation += 1;
            p.socket = None;
            p.reconnect = None;
            p.refresh = None;
        });
    }

    /// Takes `session` into use: keeps it, loads what the menus need, opens the stream, and
    /// schedules the refresh.
    fn start(self, session: Session) {
        self.plumbing.update_value(|p| {
            if let Ok(text) = serde_json::to_string(&session) {
                let _ = p.store.set(SESSION_KEY, &text);
            }
        });
        self.session.set(Some(session.clone()));
        self.schedule_refresh(session.expires_at_ms);
        self.connect();
        leptos::task::spawn_local(async move { self.load().await });
    }

    /// The statuses and the upstream's call controls.
    async fn load(self) {
        let (Ok(base), Some(token)) = (self.base(), self.token()) else {
            return;
        };
        let get = Method::Get;
        match api(&base, get, "/me", Some(&token), None).await {
            Ok(text) => match decode::<Me>(text) {
                Ok(me) => {
                    let controls = me
                        .capabilities
                        .iter()
                        .filter_map(|c| CallControl::parse(c))
                        .collect();
                    let _ = self.capabilities.try_set(controls);
                }
                Err(failure) => self.log.warn(format!("GET /me: {}", failure.message)),
            },
            Err(failure) if is_session_gone(&failure) => return self.end_session(),
            Err(failure) => self.log.warn(format!("GET /me: {}", failure.message)),
        }
        self.load_inheritance().await;
        match api(&base, get, "/statuses", Some(&token), None).await {
            Ok(text) => match decode::<Statuses>(text) {
                Ok(list) => {
                    let _ = self.statuses.try_set(list.statuses);
                }
                Err(failure) => self.log.warn(format!("statuses: {}", failure.message)),
            },
            Err(failure) => self.log.warn(format!("GET /statuses: {}", failure.message)),
        }
    }

    /// Reads the status inheritance settings.
    pub async fn load_inheritance(self) {
        let (Ok(base), Some(token)) = (self.base(), self.token()) else {
            return;
        };
        match api(
            &base,
            Method::Get,
            "/status-inheritance",
            Some(&token),
            None,
        )
        .await
        .and_then(decode::<InheritanceView>)
        {
            Ok(view) => {
                let _ = self.inheritance.try_set(Some(view));
            }
            Err(failure) => self
                .log
                .warn(format!("status inheritance: {}", failure.message)),
        }
    }

    /// Reports a Kustomer status change of the agent (the leader tab only); what the gateway
    /// decided is logged, and said to the agent when it did not apply.
    pub async fn kustomer_status(self, status_id: String, name: String, at_ms: Option<i64>) {
        let (Ok(base), Some(token)) = (self.base(), self.token()) else {
            return;
        };
        let body = body_of(&KustomerStatusRequest { status_id, at_ms });
        let answer = api(
            &base,
            Method::Post,
            "/kustomer-status",
            Some(&token),
            body.as_deref(),
        )
        .await
        .and_then(decode::<Inherited>);
        match answer {
            Ok(inherited) => {
                let decision = inherited.decision;
                let value = decision
                    .value
                    .as_ref()
                    .map(|v| v.to_string().trim_matches('"').to_owned())
                    .unwrap_or_default();
                self.log.info(format!(
                    "Kustomer status {name}: {} {value}",
                    decision.action
                ));
                let outcome = match decision.action.as_str() {
                    "ignore" => Outcome::KustomerIgnored { name, why: value },
                    "set_next" => Outcome::KustomerNext(name),
                    _ => Outcome::KustomerApplied(name),
                };
                let _ = self.outcome.try_set(Some(outcome));
            }
            Err(failure) => {
                self.log
                    .warn(format!("Kustomer status {name}: {}", failure.message));
                let _ = self.outcome.try_set(Some(Outcome::failed(failure)));
            }
        }
    }

    fn schedule_refresh(self, expires_at_ms: i64) {
        let wait = (expires_at_ms as f64 - now_ms() - REFRESH_MARGIN_MS as f64).max(5_000.0);
        let timer =
            gloo_timers::callback::Timeout::new(wait.min(u32::MAX as f64) as u32, move || {
                leptos::task::spawn_local(async move { self.refresh().await });
            });
        self.plumbing.update_value(|p| p.refresh = Some(timer));
    }

    /// Rotates the token; the stream reconnects with the new one where it left off.
    async fn refresh(self) {
        let (Ok(base), Some(token)) = (self.base(), self.token()) else {
            return;
        };
        match api(&base, Method::Post, "/sessions/refresh", Some(&token), None)
            .await
            .and_then(decode::<Session>)
        {
            Ok(session) => {
                self.log.info("session refreshed");
                self.plumbing.update_value(|p| {
                    if let Ok(text) = serde_json::to_string(&session) {
                        let _ = p.store.set(SESSION_KEY, &text);
                    }
                });
                let expires = session.expires_at_ms;
                let _ = self.session.try_set(Some(session));
                self.schedule_refresh(expires);
                self.connect();
            }
            Err(failure) if is_session_gone(&failure) => {
                // Another tab of this browser may have rotated the token first (the gateway
                // lets exactly one refresh of a token succeed): take the session it kept.
                let rotated = self
                    .plumbing
                    .try_with_value(|p| restore(&p.store))
                    .flatten()
                    .filter(|kept| kept.token != token);
                if let Some(session) = rotated {
                    self.log.info("session rotated by another tab");
                    self.start(session);
                    return;
                }
                self.log.warn("the session ended at the gateway");
                self.end_session();
            }
            Err(failure) => {
                // The gateway is unreachable: try again soon, while the session lasts.
                self.log
                    .warn(format!("session refresh failed: {}", failure.message));
                let retry_at = now_ms() as i64 + REFRESH_MARGIN_MS + 10_000;
                self.schedule_refresh(retry_at);
            }
        }
    }

    /// (Re)opens the event stream, resuming after the last event seen.
    fn connect(self) {
        let Some(token) = self.token() else { return };
        let Ok(base) = self.base() else { return };
        let Some((generation, epoch, seq)) = self.plumbing.try_update_value(|p| {
            p.generation += 1;
            p.socket = None;
            p.reconnect = None;
            p.link.probe_started();
            (p.generation, p.position.epoch, p.position.seq)
        }) else {
            return;
        };
        self.publish_link();
        let browser = self
            .plumbing
            .try_update_value(browser_id)
            .unwrap_or_default();
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
                let sent = serde_json::to_string(&auth)
                    .map_err(|e| e.to_string())
                    .and_then(|text| socket.send_with_str(&text).map_err(|e| format!("{e:?}")));
                if let Err(error) = sent {
                    return self.dropped(generation, format!("auth not sent: {error}"), None);
                }
                // Connected once the gateway has accepted the auth and said something (see
                // `receive`): a gateway that closes every stream right after it opens must not
                // reset the backoff into a tight loop.
                self.plumbing
                    .update_value(|p| p.position.last_message_ms = now_ms());
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
            p.socket = Some(LiveSocket {
                socket,
                _on_message: on_message,
                _on_close: on_close,
                _on_open: on_open,
            });
        });
    }

    fn current(&self, generation: u64) -> bool {
        self.plumbing
            .try_with_value(|p| p.generation == generation)
            .unwrap_or(false)
    }

    fn publish_link(&self) {
        if let Some(state) = self.plumbing.try_with_value(|p| p.link.state().clone()) {
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
            p.socket = None;
            let wait = p.link.probe_failed(reason.clone(), js_sys::Math::random());
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
        self.plumbing.update_value(|p| p.reconnect = Some(timer));
    }

    /// A half-open connection sends nothing: after [`SILENCE_LIMIT_MS`], start again.
    fn check_silence(self) {
        let stale = self.plumbing.try_with_value(|p| {
            p.socket.is_some()
                && p.position.last_message_ms > 0.0
                && now_ms() - p.position.last_message_ms > SILENCE_LIMIT_MS
        });
        if stale == Some(true) {
            let generation = self.plumbing.with_value(|p| p.generation);
            self.dropped(generation, "no heartbeat".into(), None);
        }
    }

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
            p.position.last_message_ms = now_ms();
            let first = *p.link.state() != ConnectionState::Connected;
            if first {
                p.link.probe_succeeded();
            }
            (first, p.position.epoch, p.position.seq)
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
                    p.position.epoch = Some(new_epoch);
                    p.position.seq = new_seq;
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
                    p.position.epoch = Some(event_epoch);
                    p.position.seq = event_seq;
                });
            }
            StreamMessage::Heartbeat { .. } => {}
            StreamMessage::Presence { browsers } => {
                let _ = self.browsers.try_set(browsers);
            }
        }
    }

    /// Runs one agent action: one at a time, its outcome shown to the agent.
    async fn act(
        self,
        method: Method,
        path: String,
        body: Option<String>,
    ) -> Result<String, ApiFailure> {
        let base = self.base()?;
        let Some(token) = self.token() else {
            return Err(ApiFailure {
                status: 401,
                code: "unauthenticated".into(),
                message: String::new(),
            });
        };
        self.busy.set(true);
        let result = api(&base, method, &path, Some(&token), body.as_deref()).await;
        let _ = self.busy.try_set(false);
        if let Err(failure) = &result {
            self.log
                .warn(format!("{path}: {} ({})", failure.message, failure.code));
            if is_session_gone(failure) {
                self.end_session();
            }
        }
        result
    }

    /// Sets the status now, or as the next status during a call.
    pub async fn set_status(self, status: StatusView) {
        let outcome = match self
            .act(
                Method::Put,
                "/status".into(),
                body_of(&SetStatusRequest {
                    status_id: status.id,
                    at_ms: now_ms() as i64,
                }),
            )
            .await
        {
            Ok(answer) => match decode::<Note>(answer).ok().and_then(|n| n.message) {
                Some(message) => Outcome::Pending(message),
                None => Outcome::StatusSet(status.name),
            },
            Err(failure) => Outcome::failed(failure),
        };
        let _ = self.outcome.try_set(Some(outcome));
    }

    /// Cancels the pending next status (after wrap-up the agent is then Available).
    pub async fn cancel_next_status(self) {
        let outcome = match self.act(Method::Delete, "/status/next".into(), None).await {
            Ok(_) => None,
            Err(failure) => Some(Outcome::failed(failure)),
        };
        let _ = self.outcome.try_set(outcome);
    }

    /// Places a call to `number` (E.164), in `conversation_id` when known.
    pub async fn place_call(self, number: String, conversation_id: Option<String>, lang: &str) {
        let outcome = match self
            .act(
                Method::Post,
                "/calls".into(),
                body_of(&PlaceCallRequest {
                    number: number.clone(),
                    conversation_id,
                    lang: lang.to_owned(),
                }),
            )
            .await
        {
            Ok(answer) => match decode::<Note>(answer).ok().and_then(|n| n.message) {
                Some(message) => Outcome::Pending(message),
                None => Outcome::Calling(number),
            },
            Err(failure) => Outcome::failed(failure),
        };
        let _ = self.outcome.try_set(Some(outcome));
    }

    /// Asks the upstream to apply `control` to call `call_id`; `extra` carries DTMF digits or a
    /// transfer target.
    pub async fn control(self, call_id: i64, control: CallControl, extra: Value) {
        let path = format!("/calls/{call_id}/{}", control.as_str());
        match self.act(Method::Post, path, Some(extra.to_string())).await {
            Ok(_) => {
                let _ = self.outcome.try_set(None);
            }
            Err(failure) => {
                let _ = self.outcome.try_set(Some(Outcome::failed(failure)));
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

    #[test]
    fn a_session_survives_a_round_trip() {
        let session = Session {
            token: "t".into(),
            agent_email: "ada@example.com".into(),
            ccai_agent_id: 101,
            kustomer_user_id: "u1".into(),
            expires_at_ms: 1,
        };
        let text = serde_json::to_string(&session).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Session>(&text).ok(), Some(session));
    }
}
