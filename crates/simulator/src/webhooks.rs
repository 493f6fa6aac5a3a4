//! Session events out, as the platform documents its External Session Events: call events and
//! chat events each POSTed to their own endpoint (`{url}/calls`, `{url}/chats`) with their own
//! HTTP Basic credentials, in the envelope `{"count": N, "events": [...]}`, several events per
//! POST when they come together. The simulator's extension events (what the platform does not
//! document) go one per POST to `{url}/extension` with the call credentials.
//!
//! Events are queued when the state changes (under the state's lock, so the queue's order is the
//! order of the changes) and delivered by one background task, in order, at least once: a
//! failed delivery is retried with backoff before the next one is sent. Faults can repeat every
//! POST (duplicates) and reverse the events inside each (out of order). Handlers never wait
//! for a delivery. Every event's delivery is recorded for `GET /_sim/state`.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use adapter_core::backoff::Backoff;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

/// Deliveries kept for `/_sim/state`.
pub const LOG_CAPACITY: usize = 1000;
/// Attempts per event before it is recorded as failed and the next one is sent.
pub const MAX_ATTEMPTS: u32 = 8;

/// Where session events go (the base URL: `/calls`, `/chats` and `/extension` are added), and
/// the HTTP Basic credentials of the call events and of the chat events.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub user: String,
    pub password: String,
    pub chat_user: String,
    pub chat_password: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("chat_user", &self.chat_user)
            .field("password", &"***")
            .finish()
    }
}

/// Which endpoint an event goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Calls,
    Chats,
    /// The simulator's extension (not a documented platform shape).
    Extension,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Calls => "calls",
            Endpoint::Chats => "chats",
            Endpoint::Extension => "extension",
        }
    }
}

/// Delivery faults, set through `POST /_sim/faults`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryFaults {
    /// Every POST is sent twice (the platform delivers at least once).
    pub repeat: bool,
    /// The events inside each POST are sent newest first.
    pub reverse: bool,
}

/// Most events in one POST.
pub const MAX_BATCH: usize = 10;
/// How long the sender waits for more events to send together.
const GATHER: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

/// One event's delivery, as `/_sim/state` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub event_id: String,
    /// `call.{stage}` / `chat.{stage}` for documented events (`call.assigned`), and
    /// `extension.{kind}` for the extension's (`extension.call.held`).
    pub event_type: String,
    pub endpoint: Endpoint,
    pub agent_id: Option<i64>,
    pub session_id: Option<i64>,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The last HTTP status received, if any.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

struct Job {
    event_id: String,
    endpoint: Endpoint,
    payload: Value,
}

/// The webhook sender. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    target: Arc<Mutex<Option<Target>>>,
    faults: Arc<Mutex<DeliveryFaults>>,
    queue: mpsc::UnboundedSender<Job>,
    log: Arc<Mutex<VecDeque<Delivery>>>,
    /// Makes event ids unique across simulator runs (a gateway deduplicates by id).
    boot: u64,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Webhooks {
    /// Starts the delivery task (needs a Tokio runtime). `backoff` paces the retries.
    pub fn spawn(target: Option<Target>, backoff: Backoff) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let webhooks = Webhooks {
            target: Arc::new(Mutex::new(target)),
            faults: Arc::default(),
            queue,
            log: Arc::default(),
            boot,
            next: Arc::default(),
        };
        tokio::spawn(deliver(webhooks.clone(), jobs, backoff));
        webhooks
    }

    /// Points webhooks elsewhere (or nowhere); events already queued go to the new target.
    pub fn set_target(&self, target: Option<Target>) {
        *lock(&self.target) = target;
    }

    pub fn enabled(&self) -> bool {
        lock(&self.target).is_some()
    }

    pub fn set_faults(&self, faults: DeliveryFaults) {
        *lock(&self.faults) = faults;
    }

    pub fn faults(&self) -> DeliveryFaults {
        *lock(&self.faults)
    }

    /// A new, unique event id: a UUID (version 4 layout) made of the boot time and a counter.
    pub fn next_event_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let high = self.boot & 0xffff_ffff_ffff;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (high >> 16) as u32,
            (high & 0xffff) as u16,
            (n >> 48) & 0xfff,
            (n >> 36) & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }

    /// Queues an event for `endpoint`; nothing when no target is set. `event_type`,
    /// `agent_id` and `session_id` are what `/_sim/state` shows of it.
    pub fn enqueue(
        &self,
        endpoint: Endpoint,
        event_id: String,
        event_type: String,
        agent_id: Option<i64>,
        session_id: Option<i64>,
        payload: Value,
    ) {
        if !self.enabled() {
            return;
        }
        let delivery = Delivery {
            event_id: event_id.clone(),
            event_type,
            endpoint,
            agent_id,
            session_id,
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
        };
        {
            let mut log = lock(&self.log);
            if log.len() == LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(delivery);
        }
        // The task lives as long as any sender: a send fails only at shutdown.
        let _ = self.queue.send(Job {
            event_id,
            endpoint,
            payload,
        });
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.log).iter().cloned().collect()
    }

    pub fn clear(&self) {
        lock(&self.log).clear();
    }

    fn update(&self, event_id: &str, change: impl FnOnce(&mut Delivery)) {
        if let Some(delivery) = lock(&self.log)
            .iter_mut()
            .rev()
            .find(|d| d.event_id == event_id)
        {
            change(delivery);
        }
    }
}

fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

async fn deliver(webhooks: Webhooks, mut jobs: mpsc::UnboundedReceiver<Job>, backoff: Backoff) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; webhooks are off");
            return;
        }
    };
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        // Documented events that come together go in one POST; the extension's go alone.
        let mut batch = vec![first];
        if batch[0].endpoint != Endpoint::Extension {
            let deadline = tokio::time::Instant::now() + GATHER;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(deadline, jobs.recv()).await {
                    Ok(Some(job)) if job.endpoint == batch[0].endpoint => batch.push(job),
                    Ok(Some(job)) => {
                        held = Some(job);
                        break;
                    }
                    _ => break,
                }
            }
        }
        let faults = webhooks.faults();
        if faults.reverse {
            batch.reverse();
        }
        let endpoint = batch[0].endpoint;
        let body = match endpoint {
            Endpoint::Extension => batch[0].payload.clone(),
            _ => serde_json::json!({
                "count": batch.len(),
                "events": batch.iter().map(|j| j.payload.clone()).collect::<Vec<_>>(),
            }),
        };
        let ids: Vec<String> = batch.iter().map(|j| j.event_id.clone()).collect();
        let sends = if faults.repeat { 2 } else { 1 };
        for _ in 0..sends {
            send(&webhooks, &http, &backoff, endpoint, &ids, &body).await;
        }
    }
}

/// One POST, retried with backoff until it is answered 2xx, refused (4xx), or out of attempts.
async fn send(
    webhooks: &Webhooks,
    http: &reqwest::Client,
    backoff: &Backoff,
    endpoint: Endpoint,
    ids: &[String],
    body: &Value,
) {
    let update = |change: &dyn Fn(&mut Delivery)| {
        for id in ids {
            webhooks.update(id, change);
        }
    };
    for attempt in 1..=MAX_ATTEMPTS {
        let Some(target) = lock(&webhooks.target).clone() else {
            update(&|d| {
                d.state = DeliveryState::Failed;
                d.last_error = Some("no webhook URL".into());
            });
            return;
        };
        let (user, password) = match endpoint {
            Endpoint::Chats => (&target.chat_user, &target.chat_password),
            Endpoint::Calls | Endpoint::Extension => (&target.user, &target.password),
        };
        let url = format!("{}/{}", target.url.trim_end_matches('/'), endpoint.path());
        let outcome = http
            .post(&url)
            .basic_auth(user, Some(password))
            .json(body)
            .send()
            .await;
        let (status, error) = match outcome {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(error.to_string())),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let last = attempt == MAX_ATTEMPTS;
        // A 4xx other than 408/429 will not get better by retrying: the payload is refused.
        let refused = status.is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429);
        update(&|d| {
            d.attempts += 1;
            d.last_status = status;
            d.last_error = error.clone();
            d.state = match (delivered, refused || last) {
                (true, _) => DeliveryState::Delivered,
                (false, true) => DeliveryState::Failed,
                (false, false) => DeliveryState::Pending,
            };
        });
        if delivered || refused {
            if refused {
                tracing::warn!(?ids, ?status, "session events refused");
            }
            return;
        }
        if !last {
            let wait = backoff.delay(attempt, jitter());
            tracing::warn!(
                ?ids,
                ?status,
                ?error,
                ?wait,
                "session events delivery failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}
