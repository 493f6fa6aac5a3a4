//! State that survives a reload. localStorage can be blocked in an iframe (browser settings,
//! sandboxing): the widget then keeps the state in memory and says so, never panics.

use std::{cell::RefCell, rc::Rc};

use leptos::prelude::*;
use wasm_bindgen::JsValue;

use crate::effects::effect_with;

/// Why localStorage cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("no window")]
    NoWindow,
    #[error("localStorage is not available")]
    Unavailable,
    #[error("localStorage is blocked: {0}")]
    Blocked(String),
    #[error("localStorage refused a write: {0}")]
    WriteFailed(String),
}

fn js_text(value: &JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            js_sys::Reflect::get(value, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{value:?}"))
}

const PROBE_KEY: &str = "ccai-adapter.probe";

/// A string key-value store: the browser's localStorage, or memory when that is blocked.
#[derive(Clone, Debug)]
pub enum KeyValueStore {
    Local(web_sys::Storage),
    Memory {
        /// Key and value, in the order written: the widget keeps a handful of keys, so a list
        /// (a map type would be code of its own in the wasm, for nothing).
        entries: Rc<RefCell<Vec<(String, String)>>>,
        /// Why the store is not persistent.
        reason: StorageError,
    },
}

impl KeyValueStore {
    /// localStorage when it works (a write is tried), else memory with the reason.
    pub fn open() -> Self {
        match Self::local_storage() {
            Ok(storage) => KeyValueStore::Local(storage),
            Err(reason) => Self::memory(reason),
        }
    }

    /// An in-memory store, not persistent, for `reason`.
    pub fn memory(reason: StorageError) -> Self {
        leptos::logging::warn!("adapter storage falls back to memory: {reason}");
        KeyValueStore::Memory {
            entries: Rc::default(),
            reason,
        }
    }

    fn local_storage() -> Result<web_sys::Storage, StorageError> {
        let window = web_sys::window().ok_or(StorageError::NoWindow)?;
        let storage = window
            .local_storage()
            .map_err(|e| StorageError::Blocked(js_text(&e)))?
            .ok_or(StorageError::Unavailable)?;
        // Some browsers hand out a storage whose writes all throw (quota 0, private modes).
        storage
            .set_item(PROBE_KEY, "1")
            .and_then(|()| storage.remove_item(PROBE_KEY))
            .map_err(|e| StorageError::WriteFailed(js_text(&e)))?;
        Ok(storage)
    }

    /// Why the store does not persist, or `None` when it does.
    pub fn problem(&self) -> Option<&StorageError> {
        match self {
            KeyValueStore::Local(_) => None,
            KeyValueStore::Memory { reason, .. } => Some(reason),
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        match self {
            KeyValueStore::Local(storage) => storage.get_item(key).ok().flatten(),
            KeyValueStore::Memory { entries, .. } => entries
                .borrow()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
        }
    }

    /// Deletes `key`.
    pub fn remove(&mut self, key: &str) -> Result<(), StorageError> {
        match self {
            KeyValueStore::Local(storage) => storage
                .remove_item(key)
                .map_err(|e| StorageError::WriteFailed(js_text(&e))),
            KeyValueStore::Memory { entries, .. } => {
                entries.borrow_mut().retain(|(k, _)| k != key);
                Ok(())
            }
        }
    }

    /// Writes `value`. When localStorage refuses, the store turns into memory (keeping the value)
    /// and the error says why.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), StorageError> {
        match self {
            KeyValueStore::Local(storage) => storage.set_item(key, value).map_err(|e| {
                let error = StorageError::WriteFailed(js_text(&e));
                *self = Self::memory(error.clone());
                let _ = self.set(key, value);
                error
            }),
            KeyValueStore::Memory { entries, .. } => {
                let mut entries = entries.borrow_mut();
                match entries.iter_mut().find(|(k, _)| k == key) {
                    Some((_, old)) => *old = value.into(),
                    None => entries.push((key.into(), value.into())),
                }
                Ok(())
            }
        }
    }
}

/// What [`use_persisted_flag`] returns.
#[derive(Clone, Copy, Debug)]
pub struct UsePersistedFlagReturn {
    pub value: Signal<bool>,
    pub set: WriteSignal<bool>,
    /// Why the flag will not survive a reload, as text; `None` while it persists.
    pub problem: Signal<Option<String>>,
}

/// A boolean kept under `key` in `store`: read once at mount, written on every change.
pub fn use_persisted_flag(
    store: KeyValueStore,
    key: &'static str,
    default: bool,
) -> UsePersistedFlagReturn {
    let initial = store.get(key).map(|v| v == "true").unwrap_or(default);
    let (value, set) = signal(initial);
    let problem = RwSignal::new(store.problem().map(ToString::to_string));
    let store = RefCell::new(store);
    effect_with(move |previous: Option<bool>| {
        let current = value.get();
        if previous.is_some_and(|p| p != current) || (previous.is_none() && current != initial) {
            let mut store = store.borrow_mut();
            if let Err(error) = store.set(key, if current { "true" } else { "false" }) {
                problem.set(Some(error.to_string()));
            }
        }
        current
    });
    UsePersistedFlagReturn {
        value: value.into(),
        set,
        problem: problem.into(),
    }
}
