//! The simulator's memory of what it was asked, readable by tests through `GET /_sim/state`.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

/// How many requests the log keeps; older ones are dropped and counted in `dropped`.
pub const LOG_CAPACITY: usize = 10_000;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecordedRequest {
    pub seq: u64,
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Debug, Default)]
struct Log {
    next_seq: u64,
    dropped: u64,
    entries: VecDeque<RecordedRequest>,
}

/// A bounded, shared log of the API requests the simulator answered.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    log: Arc<Mutex<Log>>,
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub requests: Vec<RecordedRequest>,
    pub dropped: u64,
}

impl Recorder {
    pub fn record(&self, method: &str, path: &str, status: u16) {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        log.next_seq += 1;
        let entry = RecordedRequest {
            seq: log.next_seq,
            at_ms: now_ms(),
            method: method.into(),
            path: path.into(),
            status,
        };
        if log.entries.len() == LOG_CAPACITY {
            log.entries.pop_front();
            log.dropped += 1;
        }
        log.entries.push_back(entry);
    }

    pub fn snapshot(&self) -> Snapshot {
        let log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Snapshot {
            requests: log.entries.iter().cloned().collect(),
            dropped: log.dropped,
        }
    }

    pub fn clear(&self) {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        log.entries.clear();
        log.dropped = 0;
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_entries_and_counts_the_dropped() {
        let recorder = Recorder::default();
        for i in 0..LOG_CAPACITY + 5 {
            recorder.record("GET", &format!("/{i}"), 200);
        }
        let snapshot = recorder.snapshot();
        assert_eq!(snapshot.requests.len(), LOG_CAPACITY);
        assert_eq!(snapshot.dropped, 5);
        assert_eq!(snapshot.requests[0].path, "/5");
        assert_eq!(snapshot.requests[0].seq, 6);
        recorder.clear();
        assert!(recorder.snapshot().requests.is_empty());
    }
}
