//! The CCAI Platform agent adapter for Kustomer: the widget agents keep open in Kustomer's
//! sidebar.
//!
//! - [`agent`]: the signed-in agent: session, live event stream, agent API actions.
//! - [`bridge`]: the host page (Kustomer) — protocol v1 over postMessage, or the Cards SDK.
//! - [`caller`]: who is calling, when Kustomer knows the number.
//! - [`gateway`]: the client of the adapter gateway (the only server the widget talks to).
//! - [`dial`]: the dial pad's state, pure.
//! - [`hooks`]: behaviours of the shell as named hooks (the ready mark).
//! - [`i18n`]: every user-facing text, in English and French.
//! - [`tabs`]: one leader among the tabs of the same agent.
//! - [`storage`]: localStorage with an in-memory fallback when the browser blocks it.
//! - [`debug_log`]: what the adapter refused or could not do, for diagnostics.
//! - [`effects`]: the widget's effects, as one type (smaller wasm).
//! - [`page`]: settings carried by the page's `<meta>` tags.
//! - [`crash`]: a readable panel instead of a white frame when the widget panics.
//! - [`components`]: the views.
//! - [`settings_page`]: the admins' settings page, a bundle of its own (`settings.html`).

pub mod agent;
pub mod bridge;
pub mod caller;
pub mod components;
pub mod crash;
pub mod debug_log;
pub mod dial;
pub mod effects;
pub mod gateway;
pub mod hooks;
pub mod i18n;
pub mod page;
pub mod settings_page;
pub mod storage;
pub mod tabs;

use adapter_core::tabs::Role;
use leptos::prelude::*;

use crate::{
    agent::{use_agent, Outcome},
    bridge::{use_host_bridge, BridgeMode, StandaloneReason, UseHostBridgeOptions},
    components::{
        on_click, shown_while, CallPanel, ConnectionLine, Diagnostics, DialPad, Header, Notice,
        NoticeWhile, SignIn,
    },
    debug_log::use_debug_log,
    gateway::{use_gateway_connection, UseGatewayConnectionOptions},
    i18n::{calling, kustomer_outcome, refusal, status_set, use_i18n, Text},
    storage::{use_persisted_flag, KeyValueStore},
};

/// The allocator: talc, several kB smaller in the wasm than the standard library's dlmalloc.
/// Single-threaded wasm only (no atomics), as this widget is built.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// localStorage key of the minimised state.
pub const MINIMISED_KEY: &str = "ccai-adapter.minimised";
/// Heights the adapter asks the host for, in CSS pixels.
pub const MINIMISED_HEIGHT: u32 = 48;
pub const RESTORED_HEIGHT: u32 = 480;

/// The size of this module's wasm memory in bytes, for the soak benchmark
/// (`window.wasmBindings.wasm_memory_bytes()`; `scripts/bench-soak.mjs`).
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn wasm_memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

/// The whole widget.
#[component]
pub fn App() -> impl IntoView {
    AdapterShell(AdapterShellProps {
        store: KeyValueStore::open(),
        gateway: UseGatewayConnectionOptions::default(),
        host: UseHostBridgeOptions::default(),
    })
}

/// The widget with its storage, gateway and host settings given, so tests can choose them.
#[component]
pub fn AdapterShell(
    /// Where the widget keeps state that survives a reload.
    store: KeyValueStore,
    /// How the widget reaches the gateway.
    gateway: UseGatewayConnectionOptions,
    /// How the widget reaches the host page.
    host: UseHostBridgeOptions,
) -> impl IntoView {
    let i18n = use_i18n();
    let log = use_debug_log();
    let minimised = use_persisted_flag(store.clone(), MINIMISED_KEY, false);
    let backoff = gateway.backoff;
    let base = match gateway.base_url.clone() {
        Some(url) => gateway::resolve_base_url(Some(&url), ""),
        None => gateway::base_url(),
    };
    let connection = use_gateway_connection(gateway);
    let bridge = use_host_bridge(host);
    hooks::use_ready_mark(bridge);
    let agent = use_agent(base, store.clone(), backoff, log);
    agent::use_settings_changes(agent);
    let signed_in = move || agent.session().with(Option::is_some);
    let pad = RwSignal::new(dial::DialPad::default());
    let storage_problem = minimised.problem;
    let toggle = Callback::new(move |()| minimised.set.update(|m| *m = !*m));
    let standalone = move || matches!(bridge.mode.get(), BridgeMode::Standalone(_));
    // The page's host is not an allowed Kustomer origin: said plainly, not as "outside Kustomer".
    let host_refused = move || {
        matches!(
            bridge.mode.get(),
            BridgeMode::Standalone(StandaloneReason::NotAllowed { .. })
        )
    };
    let customer = Signal::derive(move || bridge.state.with(|s| s.context.customer.clone()));
    let call_blocked =
        Signal::derive(move || (!signed_in()).then(|| i18n.t(Text::CallNeedsSignIn).to_owned()));
    let user = Signal::derive(move || bridge.state.with(|s| s.user.clone()));
    let place_call = Callback::new(move |(number, conversation): (String, Option<String>)| {
        let conversation = conversation.or_else(|| {
            bridge
                .state
                .with_untracked(|s| s.context.conversation.as_ref().map(|c| c.id.clone()))
        });
        leptos::task::spawn_local(agent.place_call(
            number,
            conversation,
            i18n.lang.get_untracked().tag(),
        ));
    });
    // While signed in, the link that matters is the event stream.
    let link = Signal::derive(move || {
        if signed_in() {
            agent.link().get()
        } else {
            connection.state.get()
        }
    });
    let outcome = move || {
        agent.outcome().get().and_then(|outcome| {
            let lang = i18n.lang.get();
            match outcome {
                // The status menu shows it already: said to screen readers only.
                Outcome::StatusSet(name) => Some(("done visually-hidden", status_set(lang, &name))),
                Outcome::Calling(number) => Some(("done", calling(lang, &number))),
                Outcome::Pending(message) => Some(("pending", message)),
                Outcome::Failed { code, message } => {
                    Some(("failed", refusal(lang, &code, &message)))
                }
                Outcome::KustomerApplied(name) => {
                    kustomer_outcome(lang, &name, "applied").map(|text| ("done", text))
                }
                Outcome::KustomerNext(name) => {
                    kustomer_outcome(lang, &name, "next").map(|text| ("pending", text))
                }
                // Nothing worth saying when inheritance is off or nothing changed.
                Outcome::KustomerIgnored { name, why } => {
                    kustomer_outcome(lang, &name, &why).map(|text| ("ignored", text))
                }
            }
        })
    };

    // One tab of this agent leads: it alone forwards Kustomer status changes.
    let tab_channel = Signal::derive(move || {
        if signed_in() {
            bridge
                .state
                .with(|s| s.user.as_ref().map(|u| tabs::channel_name(&u.id)))
        } else {
            None
        }
    });
    let in_call = Signal::derive(move || agent.state().with(|s| s.call.is_some()));
    let tabs = tabs::use_tab_leader(tab_channel, in_call);
    let follower = move || signed_in() && tabs.role.get() == Role::Follower;
    let country = page::default_country();
    let caller = caller::use_caller(agent, bridge, country);
    // The dial pad shows when Call can be used: signed in, in the leading tab, no call going on.
    // Signed out, it shows only what click-to-call put in it (with why Call waits).
    let call_going_on = move || {
        agent
            .state()
            .with(|s| s.call.as_ref().is_some_and(|c| !c.state.is_over()))
    };
    let forwarded = hooks::use_kustomer_status_forwarding(agent, bridge, tabs, log);
    let inheriting = move || agent.inheriting().get();
    hooks::use_screen_pop(agent, bridge, tabs, log);
    hooks::use_one_kustomer_user(agent, bridge, log);
    hooks::use_ringing_brings_up(agent, bridge, minimised.set);
    hooks::use_host_language(bridge, i18n);
    hooks::use_host_height(bridge, minimised.value);
    hooks::use_click_to_call(bridge, pad, minimised.set, log);
    let dial_pad_shown = move || {
        if signed_in() {
            !follower() && !call_going_on()
        } else {
            pad.with(|p| !p.text().trim().is_empty())
        }
    };
    view! {
        <main
            class="adapter"
            class:minimised=move || minimised.value.get()
            aria-label=i18n.text(Text::AdapterLabel)
            data-tab-role=Signal::derive(move || tabs.role.get().name())
        >
            <Header minimised=minimised.value on_toggle=toggle agent=agent />
            <div id="adapter-body" class="adapter-body" hidden=Signal::derive(move || minimised.value.get())>
                <ConnectionLine state=link />
                {shown_while(Signal::derive(standalone), view! {
                    <Notice
                        kind=if host_refused() { "host-refused" } else { "standalone" }
                        text=Signal::derive(move || {
                            let text = if host_refused() { Text::HostNotAllowed } else { Text::Standalone };
                            i18n.t(text).to_string()
                        })
                        detail=Signal::derive(move || match bridge.mode.get() {
                            BridgeMode::Standalone(reason) => reason.to_string(),
                            _ => String::new(),
                        })
                    />
                })}
                <NoticeWhile
                    when=Signal::derive(move || signed_in() && agent.too_many_streams().get())
                    kind="too-many-streams"
                    text=Text::TooManyStreams
                />
                <NoticeWhile
                    when=Signal::derive(move || storage_problem.get().is_some())
                    kind="storage"
                    text=Text::StorageBlocked
                    detail=Signal::derive(move || storage_problem.get().unwrap_or_default())
                />
                {shown_while(Signal::derive(move || !signed_in()), view! {
                    <SignIn agent=agent user=user standalone=Signal::derive(standalone) />
                })}
                {shown_while(Signal::derive(follower), view! {
                    <div class="notice notice-other-tab" role="note">
                        <p>{i18n.text(Text::ActiveInAnotherTab)}</p>
                        <p hidden=Signal::derive(move || !tabs.leader_in_call.get())>{i18n.text(Text::OtherTabInCall)}</p>
                        <button
                            type="button"
                            class="button use-here"
                            disabled=Signal::derive(move || tabs.leader_in_call.get())
                            on:click=on_click(move |_| {
                                let _ = tabs.use_here();
                            })
                        >
                            {i18n.text(Text::UseHere)}
                        </button>
                    </div>
                })}
                <NoticeWhile
                    when=Signal::derive(move || signed_in() && agent.other_browsers().get())
                    kind="other-browser"
                    text=Text::OtherBrowser
                />
                <NoticeWhile
                    when=Signal::derive(move || signed_in() && inheriting() && !forwarded.get())
                    kind="login-status"
                    text=Text::LoginNotInherited
                />
                <CallPanel agent=agent caller=caller />
                // One live region for the page's life (announced when its text changes), hidden
                // while there is nothing to say.
                <p
                    class=Signal::derive(move || outcome().map(|(kind, _)| format!("outcome outcome-{kind}")).unwrap_or_default())
                    role="status"
                    hidden=Signal::derive(move || outcome().is_none())
                >
                    {Signal::derive(move || outcome().map(|(_, text)| text).unwrap_or_default())}
                </p>
                <div class="dial-pad-slot" hidden=Signal::derive(move || !dial_pad_shown())>
                    <DialPad
                        pad=pad
                        default_country=country
                        customer=customer
                        call_blocked=call_blocked
                        on_call=place_call
                    />
                </div>
            </div>
            <footer class="adapter-footer" hidden=Signal::derive(move || minimised.value.get())>
                {shown_while(Signal::derive(signed_in), view! {
                    <span class="signed-in-as">
                        {move || agent.session().with(|s| s.as_ref().map(|s| s.agent_email.clone()))}
                    </span>
                    <button type="button" class="button sign-out" on:click=on_click(move |_| leptos::task::spawn_local(agent.sign_out()))>
                        {i18n.text(Text::SignOut)}
                    </button>
                })}
                <Diagnostics log=log />
            </footer>
        </main>
    }
}
