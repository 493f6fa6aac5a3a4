//! The widget's views. Each is a noun with documented props; none reaches the network, the host
//! or storage itself (hooks do, and hand them signals).
//!
//! Reactive `hidden`/`disabled` flags and short fixed texts are `Signal`s (`Signal<bool>`,
//! `Signal<&'static str>`) rather than closures: every closure instantiates its own rendering
//! code, while all signals of one type share one, which makes the wasm smaller.

mod call_panel;
mod connection_line;
mod diagnostics;
mod dial_pad;
mod header;
mod inheritance_settings;
mod notice;
mod sign_in;
mod status_menu;

pub use call_panel::CallPanel;
pub use connection_line::ConnectionLine;
pub use diagnostics::Diagnostics;
pub use dial_pad::DialPad;
pub use header::Header;
pub use inheritance_settings::InheritanceSettingsPanel;
pub use notice::{Notice, NoticeWhile};
pub use sign_in::SignIn;
pub use status_menu::StatusMenu;

use leptos::prelude::*;

/// `view`, shown while `when` holds: built once, in a wrapper (`<div class="when">`, which CSS
/// lays out as if it were not there) that is `hidden` otherwise. Not mounted and unmounted as
/// Leptos' `<Show>` does: each conditional view then costs the wasm one reactive attribute of a
/// type every such view shares, where a conditional mount instantiated the framework's building
/// and rebuilding of that view once per use (about 4.6 kB of the widget's gzip over its six).
/// The view keeps its state while hidden, so views that must start afresh clear it themselves.
pub fn shown_while(when: Signal<bool>, view: impl IntoView + 'static) -> impl IntoView {
    view! { <div class="when" hidden=Signal::derive(move || !when.get())>{view}</div> }
}

/// A click handler, boxed: every `on:click` of the views is then one type, so Tachys' code that
/// attaches a handler is in the wasm once instead of once per handler.
pub fn on_click(
    handler: impl FnMut(leptos::ev::MouseEvent) + 'static,
) -> Box<dyn FnMut(leptos::ev::MouseEvent)> {
    Box::new(handler)
}

/// An `on:input` handler that writes the input's value to `text`: one function, so every such
/// handler is one type (as [`on_click`]).
pub fn write_input(text: RwSignal<String>) -> impl FnMut(leptos::ev::Event) + 'static {
    move |event| text.set(event_target_value(&event))
}
