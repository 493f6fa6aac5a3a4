//! The host bridge: everything the host page (Kustomer, or the host emulator) tells the adapter,
//! and everything the adapter asks of it, over one of two transports the rest of the widget
//! does not tell apart:
//!
//! - [`post_message`]: protocol v1 over `window.postMessage`, pinned to the origin of the
//!   `parentUrl` query parameter, which must be one of the allowed Kustomer origins
//!   (`docs/host-protocol.md`);
//! - [`cards_sdk`]: Kustomer's Cards SDK (`window.Kustomer`) when the page runs inside Kustomer
//!   with it loaded.
//!
//! Without either, the adapter runs standalone: host features off, nothing accepted.

pub mod cards_sdk;
pub mod origin;
pub mod post_message;

use std::{
    cell::{Cell, RefCell},
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context as TaskContext, Poll, Waker},
    time::Duration,
};

use adapter_core::host_protocol::{
    AdapterToHost, ApiResponse, ClickToCall, Context, Envelope, HostToAdapter, KustomerUser,
    UserStatusChanged, VERSION,
};
use leptos::prelude::*;
use serde_json::Value;

use crate::debug_log::{use_debug_log, DebugLog};
pub use origin::StandaloneReason;

/// Which transport the bridge runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeMode {
    PostMessage { host_origin: String },
    CardsSdk,
    Standalone(StandaloneReason),
}

/// A click-to-call, numbered so that the same number clicked twice is seen twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickToCallEvent {
    pub seq: u64,
    pub request: ClickToCall,
}

/// Why a request to the host failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    #[error("no host: {0}")]
    Standalone(StandaloneReason),
    #[error("the host did not answer within {0} ms")]
    Timeout(u32),
    #[error("the host cannot do this: {0}")]
    NotSupported(&'static str),
    #[error("the host reported an error: {0}")]
    Host(String),
    #[error("cannot post to the host: {0}")]
    Send(String),
}

/// What the host told the adapter. One signal holds it all: readers take the part they need.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostState {
    pub user: Option<KustomerUser>,
    pub context: Context,
    pub lang: Option<String>,
    pub click_to_call: Option<ClickToCallEvent>,
    pub user_status: Option<UserStatusChanged>,
}

type Answer = Result<ApiResponse, BridgeError>;

/// Where a request's answer lands, and who waits for it.
#[derive(Default)]
struct Slot {
    answer: Option<Answer>,
    waker: Option<Waker>,
}

/// The future of a request: ready once its slot holds an answer.
struct Reply(Rc<RefCell<Slot>>);

impl Future for Reply {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Answer> {
        let mut slot = self.0.borrow_mut();
        match slot.answer.take() {
            Some(answer) => Poll::Ready(answer),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A request waiting for its answer, and the timer that fails it (dropped, so cancelled, with it).
struct Waiting {
    id: String,
    slot: Rc<RefCell<Slot>>,
    _timeout: gloo_timers::callback::Timeout,
}

impl Waiting {
    fn answer(self, answer: Answer) {
        let mut slot = self.slot.borrow_mut();
        slot.answer = Some(answer);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
    }
}

/// Requests waiting for answers: a handful at most, so a list.
#[derive(Clone, Default)]
struct Pending(Rc<RefCell<Vec<Waiting>>>);

impl Pending {
    fn take(&self, id: &str) -> Option<Waiting> {
        let mut list = self.0.borrow_mut();
        let at = list.iter().position(|w| w.id == id)?;
        Some(list.swap_remove(at))
    }
}

/// Where decoded host messages land, whichever transport brought them.
#[derive(Clone)]
pub struct Inbox {
    state: RwSignal<HostState>,
    pending: Pending,
    log: DebugLog,
}

impl Inbox {
    pub fn deliver(&self, envelope: Envelope<HostToAdapter>) {
        match envelope.message {
            HostToAdapter::Init(init) => {
                self.log.info(format!(
                    "handshake: host user {} ({})",
                    init.user.id, init.user.email
                ));
                self.state.update(|s| {
                    s.user = Some(init.user);
                    s.context = init.context;
                    s.lang = init.lang;
                });
            }
            HostToAdapter::ContextChanged(context) => self.state.update(|s| s.context = context),
            HostToAdapter::ClickToCall(request) => {
                self.state.update(|s| {
                    let seq = s.click_to_call.as_ref().map_or(0, |c| c.seq) + 1;
                    s.click_to_call = Some(ClickToCallEvent { seq, request });
                });
            }
            HostToAdapter::UserStatusChanged(status) => {
                self.log.info(format!(
                    "Kustomer status: {} ({:?}) at {}",
                    status.name, status.status_type, status.at
                ));
                self.state.update(|s| s.user_status = Some(status));
            }
            HostToAdapter::ApiResponse(response) => {
                self.resolve(envelope.reply_to.as_deref(), Ok(response))
            }
        }
    }

    /// Completes the request `reply_to` (a late or unknown answer is logged and dropped).
    pub fn resolve(&self, reply_to: Option<&str>, result: Result<ApiResponse, BridgeError>) {
        match reply_to.and_then(|id| self.pending.take(id)) {
            Some(waiting) => waiting.answer(result),
            None => self.log.warn(format!(
                "dropped an api_response for {}: no request is waiting for it (late or unknown)",
                reply_to.unwrap_or("-")
            )),
        }
    }
}

enum Transport {
    PostMessage(post_message::PostMessageTransport),
    CardsSdk(cards_sdk::CardsSdkTransport),
    Standalone(StandaloneReason),
}

struct Inner {
    transport: Transport,
    inbox: Inbox,
    next_id: Cell<u64>,
    request_timeout: Duration,
}

/// The bridge. Cheap to clone; dropping the last clone removes its listeners.
#[derive(Clone)]
pub struct HostBridge {
    inner: Rc<Inner>,
}

impl HostBridge {
    pub fn mode(&self) -> BridgeMode {
        match &self.inner.transport {
            Transport::PostMessage(t) => BridgeMode::PostMessage {
                host_origin: t.host_origin().to_owned(),
            },
            Transport::CardsSdk(_) => BridgeMode::CardsSdk,
            Transport::Standalone(reason) => BridgeMode::Standalone(reason.clone()),
        }
    }

    fn next_id(&self) -> String {
        let n = self.inner.next_id.get() + 1;
        self.inner.next_id.set(n);
        format!("a-{n}")
    }

    fn post(&self, id: Option<&str>, message: &AdapterToHost) -> Result<(), BridgeError> {
        match &self.inner.transport {
            Transport::PostMessage(t) => t.post(id, None, message),
            Transport::CardsSdk(t) => t.post(id, message),
            Transport::Standalone(reason) => Err(BridgeError::Standalone(reason.clone())),
        }
    }

    /// Sends `message` to the host; failures go to the debug log (standalone is not one).
    pub fn send(&self, message: AdapterToHost) {
        match self.post(None, &message) {
            Ok(()) | Err(BridgeError::Standalone(_)) => {}
            Err(error) => self
                .inner
                .inbox
                .log
                .warn(format!("could not send to the host: {error}")),
        }
    }

    /// Asks the host to call the Kustomer API as the agent, and waits for its answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<ApiResponse, BridgeError> {
        let id = self.next_id();
        let slot = Rc::new(RefCell::new(Slot::default()));
        let timeout_ms = u32::try_from(self.inner.request_timeout.as_millis()).unwrap_or(u32::MAX);
        let timeout = gloo_timers::callback::Timeout::new(timeout_ms, {
            let (pending, id) = (self.inner.inbox.pending.clone(), id.clone());
            move || {
                if let Some(waiting) = pending.take(&id) {
                    waiting.answer(Err(BridgeError::Timeout(timeout_ms)));
                }
            }
        });
        self.inner.inbox.pending.0.borrow_mut().push(Waiting {
            id: id.clone(),
            slot: Rc::clone(&slot),
            _timeout: timeout,
        });
        let message = AdapterToHost::ApiRequest {
            method: method.into(),
            path: path.into(),
            body,
        };
        if let Err(error) = self.post(Some(&id), &message) {
            self.inner.inbox.pending.take(&id);
            return Err(error);
        }
        Reply(slot).await
    }
}

/// How much host traffic is processed: a burst of `capacity`, then `per_second`.
#[derive(Clone, Copy, Debug)]
pub struct FloodLimits {
    pub capacity: u32,
    pub per_second: u32,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            capacity: 100,
            per_second: 50,
        }
    }
}

/// Which host to talk to.
#[derive(Clone, Debug, Default)]
pub enum HostChoice {
    /// The Cards SDK when loaded, else postMessage to the parent window pinned to `parentUrl`.
    #[default]
    FromPage,
    /// postMessage with this window as the host, pinned to `origin` (tests).
    Window {
        host: web_sys::Window,
        origin: String,
    },
    /// No host.
    Standalone(StandaloneReason),
}

/// Options of [`use_host_bridge`].
#[derive(Clone, Debug)]
pub struct UseHostBridgeOptions {
    pub host: HostChoice,
    pub request_timeout: Duration,
    pub flood: FloodLimits,
}

impl Default for UseHostBridgeOptions {
    fn default() -> Self {
        UseHostBridgeOptions {
            host: HostChoice::FromPage,
            request_timeout: Duration::from_secs(10),
            flood: FloodLimits::default(),
        }
    }
}

/// What [`use_host_bridge`] returns.
#[derive(Clone, Copy, Debug)]
pub struct UseHostBridgeReturn {
    pub state: RwSignal<HostState>,
    pub mode: Signal<BridgeMode>,
    bridge: StoredValue<Option<HostBridge>, LocalStorage>,
}

impl UseHostBridgeReturn {
    /// Sends `message` to the host (nothing when standalone).
    pub fn send(&self, message: AdapterToHost) {
        if let Some(bridge) = self.bridge.try_get_value().flatten() {
            bridge.send(message);
        }
    }

    /// The bridge itself, for requests.
    pub fn bridge(&self) -> Option<HostBridge> {
        self.bridge.try_get_value().flatten()
    }
}

fn page_parent_url() -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get("parentUrl")
}

/// Connects to the host for as long as the calling component lives, and announces the adapter
/// with `ready`.
pub fn use_host_bridge(options: UseHostBridgeOptions) -> UseHostBridgeReturn {
    let log = use_debug_log();
    let state = RwSignal::new(HostState::default());
    let inbox = Inbox {
        state,
        pending: Pending::default(),
        log,
    };
    let transport = match start_transport(options.host, inbox.clone(), log, options.flood) {
        Ok(transport) => transport,
        Err(reason) => Transport::Standalone(reason),
    };
    let bridge = HostBridge {
        inner: Rc::new(Inner {
            transport,
            inbox,
            next_id: Cell::new(0),
            request_timeout: options.request_timeout,
        }),
    };
    let mode = bridge.mode();
    match &mode {
        BridgeMode::Standalone(reason) => log.info(format!("running standalone: {reason}")),
        BridgeMode::PostMessage { host_origin } => {
            log.info(format!("host bridge: postMessage pinned to {host_origin}"))
        }
        BridgeMode::CardsSdk => log.info("host bridge: Kustomer Cards SDK"),
    }
    let id = bridge.next_id();
    if let Err(error) = bridge.post(Some(&id), &AdapterToHost::Ready { version: VERSION }) {
        if !matches!(error, BridgeError::Standalone(_)) {
            log.warn(format!(
                "could not announce the adapter to the host: {error}"
            ));
        }
    }
    UseHostBridgeReturn {
        state,
        mode: Signal::stored(mode),
        bridge: StoredValue::new_local(Some(bridge)),
    }
}

fn start_transport(
    choice: HostChoice,
    inbox: Inbox,
    log: DebugLog,
    flood: FloodLimits,
) -> Result<Transport, StandaloneReason> {
    let own = web_sys::window().ok_or(StandaloneReason::NotFramed)?;
    match choice {
        HostChoice::Standalone(reason) => Err(reason),
        HostChoice::Window { host, origin } => {
            post_message::PostMessageTransport::start(own, host, origin, inbox, log, flood)
                .map(Transport::PostMessage)
                .map_err(|e| StandaloneReason::Unusable(format!("{e:?}")))
        }
        HostChoice::FromPage => {
            if let Some(sdk) = cards_sdk::detect(&own) {
                return cards_sdk::CardsSdkTransport::start(sdk, inbox, log)
                    .map(Transport::CardsSdk)
                    .map_err(|e| StandaloneReason::Unusable(format!("{e:?}")));
            }
            let allowed = crate::page::kustomer_origins();
            let origin = origin::allowed_host_origin(page_parent_url().as_deref(), &allowed)?;
            let parent = own
                .parent()
                .ok()
                .flatten()
                .ok_or(StandaloneReason::NotFramed)?;
            if js_sys::Object::is(parent.as_ref(), own.as_ref()) {
                return Err(StandaloneReason::NotFramed);
            }
            post_message::PostMessageTransport::start(own, parent, origin, inbox, log, flood)
                .map(Transport::PostMessage)
                .map_err(|e| StandaloneReason::Unusable(format!("{e:?}")))
        }
    }
}
