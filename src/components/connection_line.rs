use adapter_core::connection::ConnectionState;
use leptos::prelude::*;

use crate::i18n::{offline_retrying, use_i18n, Text};

/// One line saying whether the gateway answers: connecting, connected, or unreachable and
/// retrying (with the reason on hover).
#[component]
pub fn ConnectionLine(
    /// The link's state, from the gateway connection hook.
    #[prop(into)]
    state: Signal<ConnectionState>,
) -> impl IntoView {
    let i18n = use_i18n();
    let text = move || match state.get() {
        ConnectionState::Connecting { .. } => i18n.t(Text::Connecting).to_string(),
        ConnectionState::Connected => i18n.t(Text::Connected).to_string(),
        ConnectionState::Offline { attempt, .. } => offline_retrying(i18n.lang.get(), attempt),
    };
    let reason = move || match state.get() {
        ConnectionState::Offline { reason, .. } => Some(reason),
        _ => None,
    };
    view! {
        <p class="connection-line" role="status" aria-live="polite" data-state=Signal::derive(move || state.get().name()) title=reason>
            <span class="connection-dot" aria-hidden="true"></span>
            <span class="connection-text">{text}</span>
        </p>
    }
}
