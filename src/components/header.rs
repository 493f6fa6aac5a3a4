use leptos::prelude::*;

use crate::{
    agent::Agent,
    components::{on_click, shown_while, StatusMenu},
    i18n::{use_i18n, Text},
};

/// The always-visible bar: product name, the agent's status area (the next status on a line of
/// its own when there is one), and minimise/restore.
#[component]
pub fn Header(
    /// Whether the adapter is minimised.
    #[prop(into)]
    minimised: Signal<bool>,
    /// Called when the agent asks to minimise or restore.
    on_toggle: Callback<()>,
    /// The signed-in agent, whose status menu the header carries.
    agent: Agent,
) -> impl IntoView {
    let signed_in = Signal::derive(move || agent.session().with(Option::is_some));
    let i18n = use_i18n();
    let toggle_label = Signal::derive(move || {
        i18n.t(if minimised.get() {
            Text::Restore
        } else {
            Text::Minimise
        })
    });
    view! {
        <header class="adapter-header">
            <h1 class="adapter-name">{i18n.text(Text::AppName)}</h1>
            <span class="header-spacer"></span>
            {shown_while(signed_in, view! { <StatusMenu agent=agent /> })}
            {shown_while(Signal::derive(move || !signed_in.get()), view! {
                <span
                    class="status-chip status-unknown"
                    role="status"
                    aria-label=i18n.text(Text::StatusLabel)
                >
                    {i18n.text(Text::StatusNotSignedIn)}
                </span>
            })}
            <button
                type="button"
                class="icon-button minimise-toggle"
                aria-controls="adapter-body"
                aria-expanded=Signal::derive(move || if minimised.get() { "false" } else { "true" })
                aria-label=toggle_label
                title=toggle_label
                on:click=on_click(move |_| on_toggle.run(()))
            >
                <span aria-hidden="true">{Signal::derive(move || if minimised.get() { "▴" } else { "▾" })}</span>
            </button>
        </header>
    }
}
