//! Behaviours of the widget's shell as named hooks, each testable alone.

use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast};

use crate::bridge::{BridgeMode, UseHostBridgeReturn};

/// The Performance API mark set when the widget is ready: the host's handshake is done (or the
/// widget runs standalone) and the screen that follows it has painted.
pub const READY_MARK: &str = "adapter-ready";

/// Sets [`READY_MARK`] once: after the handshake, at the first paint that follows it.
pub fn use_ready_mark(bridge: UseHostBridgeReturn) {
    Effect::new(move |marked: Option<bool>| {
        if marked == Some(true) {
            return true;
        }
        let ready = bridge.state.with(|s| s.user.is_some())
            || matches!(bridge.mode.get(), BridgeMode::Standalone(_));
        if ready {
            // The animation frame comes before the paint; a task queued from it runs after.
            let after_paint = Closure::once_into_js(|| {
                gloo_timers::callback::Timeout::new(0, || {
                    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
                        let _ = performance.mark(READY_MARK);
                    }
                })
                .forget();
            });
            if let Some(window) = web_sys::window() {
                let _ = window.request_animation_frame(after_paint.unchecked_ref());
            }
        }
        ready
    });
}
