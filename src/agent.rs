//! The signed-in agent: the session (kept across reloads, refreshed before it expires), the
//! agent API calls behind the status menu, Call and the call controls, and what the widget
//! shows of the agent. Views read the agent's state through read-only signals ([`Agent::state`],
//! [`Agent::session`]…) and change it only through its commands ([`Agent::set_status`],
//! [`Agent::place_call`]…); the live event stream that keeps the state current is in
//! [`stream`].

mod answers;
mod stream;

use adapter_core::{
    agent_events::{AgentState, CallControl, StatusView},
    backoff::Backoff,
    connection::ConnectionState,
    host_protocol::KustomerUser,
};
use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast};

use crate::{debug_log::DebugLog, gateway::GatewayError, storage::KeyValueStore};

pub use stream::BROWSER_KEY;

/// localStorage key of the session, so a reload (even mid-call) keeps the agent signed in.
pub const SESSION_KEY: &str = "ccai-adapter.session";
/// Refresh this long before the session expires.
const REFRESH_MARGIN_MS: i64 = 60_000;

pub use adapter_core::agent_api::{InheritanceSettings, KustomerStatus, Session, StatusOption};
use adapter_core::agent_api::{
    KustomerStatusRequest, PlaceCallRequest, SetStatusRequest, SignInRequest, SignInUser, Statuses,
};
use answers::{Capabilities, Decided, InheritanceOn, Note};

pub use crate::gateway::ApiFailure;

/// Why the session must be dropped: the gateway no longer knows it.
fn is_session_gone(failure: &ApiFailure) -> bool {
    failure.status == 401
}

/// One agent API request (see [`crate::gateway::request`]).
pub use crate::gateway::request as api;
use crate::gateway::{decode, Method};
use adapter_core::json_text::{Object, ToJson};

/// What the contact center offers the signed-in agent: the statuses of the menu and the call
/// controls of its role. One signal for both (each signal type is code of its own in the wasm).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Offer {
    pub statuses: Vec<StatusOption>,
    pub controls: Vec<CallControl>,
}

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

struct Plumbing {
    base: Result<String, GatewayError>,
    store: KeyValueStore,
    stream: stream::Stream,
    refresh: Option<gloo_timers::callback::Timeout>,
    _watchdog: Option<gloo_timers::callback::Interval>,
}

/// One of the agent's values, read-only: views read it (tracked or not), only the agent writes
/// it. A view of the agent's own signal, so reading costs what reading the signal costs.
pub struct Reading<T: 'static>(RwSignal<T>);

impl<T> Clone for Reading<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Reading<T> {}

impl<T: Send + Sync + 'static> Reading<T> {
    /// Applies `f` to the value, tracked.
    pub fn with<U>(&self, f: impl FnOnce(&T) -> U) -> U {
        self.0.with(f)
    }

    /// Applies `f` to the value, untracked.
    pub fn with_untracked<U>(&self, f: impl FnOnce(&T) -> U) -> U {
        self.0.with_untracked(f)
    }

    /// Tracks the value without reading it.
    pub fn track(&self) {
        self.0.track();
    }
}

impl<T: Clone + Send + Sync + 'static> Reading<T> {
    /// The value, tracked.
    pub fn get(&self) -> T {
        self.0.get()
    }

    /// The value, untracked.
    pub fn get_untracked(&self) -> T {
        self.0.get_untracked()
    }
}

/// What the gateway would have said, set directly by the widget's browser tests
/// ([`Agent::as_if_the_gateway_said`]).
#[doc(hidden)]
pub enum GatewaySaid {
    Statuses(Vec<StatusOption>),
    Capabilities(Vec<CallControl>),
    State(Box<AgentState>),
}

/// The signed-in agent and everything the widget shows of it. `Copy`: hand it to any view.
/// Views read its signals and call its commands; none can write its state.
#[derive(Clone, Copy)]
pub struct Agent {
    session: RwSignal<Option<Session>>,
    state: RwSignal<AgentState>,
    offer: RwSignal<Offer>,
    link: RwSignal<ConnectionState>,
    outcome: RwSignal<Option<Outcome>>,
    inheriting: RwSignal<bool>,
    busy: RwSignal<bool>,
    other_browsers: RwSignal<bool>,
    too_many_streams: RwSignal<bool>,
    log: DebugLog,
    plumbing: StoredValue<Plumbing, LocalStorage>,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The session of `store`, if one is kept and not expired.
pub fn restore(store: &KeyValueStore) -> Option<Session> {
    let text = store.get(SESSION_KEY)?;
    let session: Session = adapter_core::json_fields::from_str(&text).ok()?;
    (session.expires_at_ms as f64 > now_ms()).then_some(session)
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
        offer: RwSignal::new(Offer::default()),
        link: RwSignal::new(ConnectionState::Connecting { attempt: 1 }),
        outcome: RwSignal::new(None),
        inheriting: RwSignal::new(false),
        busy: RwSignal::new(false),
        other_browsers: RwSignal::new(false),
        too_many_streams: RwSignal::new(false),
        log,
        plumbing: StoredValue::new_local(Plumbing {
            base,
            store,
            stream: stream::Stream::new(backoff),
            refresh: None,
            _watchdog: None,
        }),
    };
    let watchdog =
        gloo_timers::callback::Interval::new(stream::WATCHDOG_MS, move || agent.check_silence());
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
    /// The session, while signed in.
    pub fn session(&self) -> Reading<Option<Session>> {
        Reading(self.session)
    }

    /// The agent's status, next status and call, as the event stream tells them.
    pub fn state(&self) -> Reading<AgentState> {
        Reading(self.state)
    }

    /// The statuses of the menu and the call controls the upstream offers.
    pub fn offer(&self) -> Reading<Offer> {
        Reading(self.offer)
    }

    /// The event stream's link (connected, reconnecting).
    pub fn link(&self) -> Reading<ConnectionState> {
        Reading(self.link)
    }

    /// The result of the agent's last action, shown until the next one.
    pub fn outcome(&self) -> Reading<Option<Outcome>> {
        Reading(self.outcome)
    }

    /// Status inheritance is on (false until read).
    pub fn inheriting(&self) -> Reading<bool> {
        Reading(self.inheriting)
    }

    /// An action is in flight (buttons wait).
    pub fn busy(&self) -> Reading<bool> {
        Reading(self.busy)
    }

    /// The agent's adapter is open in another browser too (worth saying: its status and calls
    /// show in both).
    pub fn other_browsers(&self) -> Reading<bool> {
        Reading(self.other_browsers)
    }

    /// The gateway refused the stream: too many are open for the agent or from this address.
    pub fn too_many_streams(&self) -> Reading<bool> {
        Reading(self.too_many_streams)
    }

    /// Sets what the gateway would have said, without a gateway: for the widget's browser
    /// tests only (`tests/web.rs`), never for views.
    #[doc(hidden)]
    pub fn as_if_the_gateway_said(&self, said: GatewaySaid) {
        match said {
            GatewaySaid::Statuses(list) => self.offer.update(|o| o.statuses = list),
            GatewaySaid::Capabilities(list) => self.offer.update(|o| o.controls = list),
            GatewaySaid::State(state) => self.state.set(*state),
        }
    }

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
        let body = Some(
            SignInRequest {
                email: email.trim().to_owned(),
                password: (!password.is_empty()).then_some(password),
                kustomer_user: SignInUser {
                    id: user.id,
                    email: user.email,
                },
            }
            .to_json(),
        );
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
            p.stream.forget_position();
        });
        let _ = self.session.try_set(None);
        let _ = self.state.try_set(AgentState::default());
        let _ = self.offer.try_update(|o| o.controls.clear());
        let _ = self.too_many_streams.try_set(false);
    }

    fn stop(&self) {
        self.plumbing.try_update_value(|p| {
            p.stream.stop();
            p.refresh = None;
        });
    }

    /// Takes `session` into use: keeps it, loads what the menus need, opens the stream, and
    /// schedules the refresh.
    fn start(self, session: Session) {
        self.plumbing.update_value(|p| {
            let _ = p.store.set(SESSION_KEY, &session.to_json());
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
            Ok(text) => match decode::<Capabilities>(text) {
                Ok(Capabilities(capabilities)) => {
                    let controls = capabilities
                        .iter()
                        .filter_map(|c| CallControl::parse(c))
                        .collect();
                    let _ = self.offer.try_update(|o| o.controls = controls);
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
                    let _ = self.offer.try_update(|o| o.statuses = list.statuses);
                }
                Err(failure) => self.log.warn(format!("statuses: {}", failure.message)),
            },
            Err(failure) => self.log.warn(format!("GET /statuses: {}", failure.message)),
        }
    }

    /// Reads whether status inheritance is on.
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
        .and_then(decode::<InheritanceOn>)
        {
            Ok(InheritanceOn(on)) => {
                let _ = self.inheriting.try_set(on);
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
        let body = Some(KustomerStatusRequest { status_id, at_ms }.to_json());
        let answer = api(
            &base,
            Method::Post,
            "/kustomer-status",
            Some(&token),
            body.as_deref(),
        )
        .await
        .and_then(decode::<Decided>);
        match answer {
            Ok(Decided { action, value }) => {
                self.log
                    .info(format!("Kustomer status {name}: {action} {value}"));
                let outcome = match action.as_str() {
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
                    let _ = p.store.set(SESSION_KEY, &session.to_json());
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
                Some(
                    SetStatusRequest {
                        status_id: status.id,
                        at_ms: Some(now_ms() as i64),
                    }
                    .to_json(),
                ),
            )
            .await
        {
            Ok(answer) => match decode::<Note>(answer).ok().and_then(|Note(note)| note) {
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
                Some(
                    PlaceCallRequest {
                        number: number.clone(),
                        conversation_id,
                        lang: Some(lang.to_owned()),
                    }
                    .to_json(),
                ),
            )
            .await
        {
            Ok(answer) => match decode::<Note>(answer).ok().and_then(|Note(note)| note) {
                Some(message) => Outcome::Pending(message),
                None => Outcome::Calling(number),
            },
            Err(failure) => Outcome::failed(failure),
        };
        let _ = self.outcome.try_set(Some(outcome));
    }

    /// Asks the upstream to apply `control` to call `call_id`; `field` carries DTMF digits
    /// (`digits`) or a transfer target (`target`).
    pub async fn control(
        self,
        call_id: i64,
        control: CallControl,
        field: Option<(&'static str, String)>,
    ) {
        let path = format!("/calls/{call_id}/{}", control.as_str());
        let mut body = Object::new();
        if let Some((key, value)) = &field {
            body.text(key, value);
        }
        match self.act(Method::Post, path, Some(body.finish())).await {
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
    fn a_session_survives_a_round_trip() {
        let session = Session {
            token: "t".into(),
            agent_email: "ada@example.com".into(),
            ccai_agent_id: 101,
            kustomer_user_id: "u1".into(),
            expires_at_ms: 1,
        };
        let text = session.to_json();
        assert_eq!(
            adapter_core::json_fields::from_str::<Session>(&text).ok(),
            Some(session)
        );
    }
}
