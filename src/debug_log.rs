//! The adapter's debug log: what it refused or could not do, kept in memory (the newest
//! [`CAPACITY`] entries), shown in the diagnostics panel, and echoed to the console.

use std::collections::VecDeque;

use leptos::prelude::*;

pub const CAPACITY: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub level: Level,
    pub text: String,
}

#[derive(Debug, Default)]
struct Entries {
    last_seq: u64,
    entries: VecDeque<Entry>,
}

/// A shared, bounded log. `Copy`, so hooks and components take it by value.
#[derive(Clone, Copy, Debug)]
pub struct DebugLog {
    entries: RwSignal<Entries>,
}

impl Default for DebugLog {
    fn default() -> Self {
        DebugLog {
            entries: RwSignal::new(Entries::default()),
        }
    }
}

impl DebugLog {
    pub fn push(&self, level: Level, text: impl Into<String>) {
        let text = text.into();
        match level {
            Level::Info => leptos::logging::log!("adapter: {text}"),
            Level::Warn => leptos::logging::warn!("adapter: {text}"),
        }
        self.entries.try_update(|log| {
            if log.entries.len() == CAPACITY {
                log.entries.pop_front();
            }
            log.last_seq += 1;
            let seq = log.last_seq;
            log.entries.push_back(Entry { seq, level, text });
        });
    }

    pub fn info(&self, text: impl Into<String>) {
        self.push(Level::Info, text);
    }

    pub fn warn(&self, text: impl Into<String>) {
        self.push(Level::Warn, text);
    }

    /// The entries, oldest first; reactive.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .with(|log| log.entries.iter().cloned().collect())
    }
}

/// The log in context, created on first use.
pub fn use_debug_log() -> DebugLog {
    use_context::<DebugLog>().unwrap_or_else(|| {
        let log = DebugLog::default();
        provide_context(log);
        log
    })
}
