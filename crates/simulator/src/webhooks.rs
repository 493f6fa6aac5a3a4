//! Session webhooks out: what the platform POSTs to a configured URL when a call or chat changes.
//!
//! Events are queued when the state changes (under the state's lock, so the queue's order is the
//! order of the changes) and delivered by one background task, in order, at least once: a
//! failed delivery is retried with backoff before the next event is sent. Handlers never wait
//! for a delivery. Every delivery is recorded for `GET /_sim/state`.

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

/// Where webhooks go, and the HTTP Basic credentials they carry.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

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
    pub event_type: String,
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
    payload: Value,
}

/// The webhook sender. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    target: Arc<Mutex<Option<Target>>>,
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

    /// A new, unique event id.
    pub fn next_event_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        format!("sim-{}-{n}", self.boot)
    }

    /// Queues `payload` (which carries `event_id`) for delivery; nothing when no target is set.
    pub fn enqueue(&self, event_id: String, payload: Value) {
        if !self.enabled() {
            return;
        }
        let delivery = Delivery {
            event_id: event_id.clone(),
            event_type: payload["event_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            agent_id: payload["agent"]["id"].as_i64(),
            session_id: payload["session"]["id"].as_i64(),
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
        let _ = self.queue.send(Job { event_id, payload });
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
    while let Some(job) = jobs.recv().await {
        for attempt in 1..=MAX_ATTEMPTS {
            let Some(target) = lock(&webhooks.target).clone() else {
                webhooks.update(&job.event_id, |d| {
                    d.state = DeliveryState::Failed;
                    d.last_error = Some("no webhook URL".into());
                });
                break;
            };
            let outcome = http
                .post(&target.url)
                .basic_auth(&target.user, Some(&target.password))
                .json(&job.payload)
                .send()
                .await;
            let (status, error) = match outcome {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(error) => (None, Some(error.to_string())),
            };
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            let last = attempt == MAX_ATTEMPTS;
            webhooks.update(&job.event_id, |d| {
                d.attempts = attempt;
                d.last_status = status;
                d.last_error = error.clone();
                d.state = match (delivered, last) {
                    (true, _) => DeliveryState::Delivered,
                    (false, true) => DeliveryState::Failed,
                    (false, false) => DeliveryState::Pending,
                };
            });
            // A 4xx other than 408/429 will not get better by retrying: the payload is refused.
            let refused = status.is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429);
            if delivered || refused {
                if refused {
                    webhooks.update(&job.event_id, |d| d.state = DeliveryState::Failed);
                    tracing::warn!(event_id = job.event_id, ?status, "webhook refused");
                }
                break;
            }
            if !last {
                let wait = backoff.delay(attempt, jitter());
                tracing::warn!(
                    event_id = job.event_id,
                    ?status,
                    ?error,
                    ?wait,
                    "webhook delivery failed; retrying"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}
