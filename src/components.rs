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

/// The view of `children` while `when` holds, nothing otherwise: Leptos' `<Show>` without a
/// fallback. `when` is memoised, so the children are built again only when it turns true. Smaller
/// in the wasm than `<Show>`, whose memo and fallback are instantiated once per use.
pub fn show<V>(
    when: Signal<bool>,
    children: impl Fn() -> V + Send + Sync + 'static,
) -> impl IntoView
where
    V: IntoView + 'static,
{
    let when = memoised(when);
    move || when.get().then(&children)
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

/// `when` as a memo: one function, so one memo type for every [`show`] and the header's status.
pub(crate) fn memoised(when: Signal<bool>) -> Memo<bool> {
    Memo::new(move |_| when.get())
}
