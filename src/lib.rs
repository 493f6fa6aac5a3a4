//! The CCAI Platform agent adapter for Kustomer: the widget agents keep open in Kustomer's
//! sidebar.
//!
//! - [`i18n`]: every user-facing text, in English and French.
//! - [`storage`]: localStorage with an in-memory fallback when the browser blocks it.
//! - [`gateway`]: the client of the adapter gateway (the only server the widget talks to).
//! - [`crash`]: a readable panel instead of a white frame when the widget panics.
//! - [`components`]: the views.

pub mod components;
pub mod crash;
pub mod gateway;
pub mod i18n;
pub mod storage;

use leptos::prelude::*;

use crate::{
    components::{ConnectionLine, Header, Notice},
    gateway::{use_gateway_connection, UseGatewayConnectionOptions},
    i18n::{use_i18n, Text},
    storage::{use_persisted_flag, KeyValueStore},
};

/// localStorage key of the minimised state.
pub const MINIMISED_KEY: &str = "ccai-adapter.minimised";

/// The whole widget.
#[component]
pub fn App() -> impl IntoView {
    AdapterShell(AdapterShellProps {
        store: KeyValueStore::open(),
        gateway: UseGatewayConnectionOptions::default(),
    })
}

/// The widget with its storage and gateway settings given, so tests can choose them.
#[component]
pub fn AdapterShell(
    /// Where the widget keeps state that survives a reload.
    store: KeyValueStore,
    /// How the widget reaches the gateway.
    gateway: UseGatewayConnectionOptions,
) -> impl IntoView {
    let i18n = use_i18n();
    let minimised = use_persisted_flag(store, MINIMISED_KEY, false);
    let connection = use_gateway_connection(gateway);
    let storage_problem = minimised.problem;
    let toggle = Callback::new(move |()| minimised.set.update(|m| *m = !*m));

    view! {
        <main
            class="adapter"
            class:minimised=move || minimised.value.get()
            aria-label=move || i18n.t(Text::AdapterLabel)
        >
            <Header minimised=minimised.value on_toggle=toggle />
            <div id="adapter-body" class="adapter-body" hidden=move || minimised.value.get()>
                <ConnectionLine state=connection.state />
                <Show when=move || storage_problem.get().is_some()>
                    <Notice
                        text=Signal::derive(move || i18n.t(Text::StorageBlocked).to_string())
                        detail=Signal::derive(move || storage_problem.get().unwrap_or_default())
                    />
                </Show>
            </div>
        </main>
    }
}
