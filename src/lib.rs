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
pub mod gateway;
pub mod hooks;
pub mod i18n;
pub mod page;
pub mod settings_page;
pub mod storage;
pub mod tabs;

use adapter_core::{
    host_protocol::{AdapterToHost, UserStatusChanged},
    iso_time,
    lang::Lang,
    tabs::Role,
};
use leptos::prelude::*;

use crate::{
    agent::{use_agent, Outcome},
    bridge::{use_host_bridge, BridgeMode, UseHostBridgeOptions},
    components::{CallPanel, ConnectionLine, Diagnostics, DialPad, Header, Notice, SignIn},
    debug_log::use_debug_log,
    gateway::{use_gateway_connection, UseGatewayConnectionOptions},
    i18n::{calling, kustomer_outcome, refusal, status_set, use_i18n, Text},
    storage::{use_persisted_flag, KeyValueStore},
};

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
    let signed_in = move || agent.session.with(Option::is_some);
    let pad = RwSignal::new(dial::DialPad::default());
    let storage_problem = minimised.problem;
    let toggle = Callback::new(move |()| minimised.set.update(|m| *m = !*m));
    let standalone = move || matches!(bridge.mode.get(), BridgeMode::Standalone(_));
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
            agent.link.get()
        } else {
            connection.state.get()
        }
    });
    let outcome = move || {
        agent.outcome.get().and_then(|outcome| {
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
    let in_call = Signal::derive(move || agent.state.with(|s| s.call.is_some()));
    let tabs = tabs::use_tab_leader(tab_channel, in_call);
    let follower = move || signed_in() && tabs.role.get() == Role::Follower;
    let country = page::default_country();
    let caller = caller::use_caller(agent, bridge, country);
    // The dial pad shows when Call can be used: signed in, in the leading tab, no call going on.
    // Signed out, it shows only what click-to-call put in it (with why Call waits).
    let call_going_on = move || {
        agent
            .state
            .with(|s| s.call.as_ref().is_some_and(|c| !c.state.is_over()))
    };
    let dial_pad_shown = move || {
        if signed_in() {
            !follower() && !call_going_on()
        } else {
            pad.with(|p| !p.text().trim().is_empty())
        }
    };
    let inheriting = move || {
        agent
            .inheritance
            .with(|v| v.as_ref().is_some_and(|v| v.settings.enabled))
    };
    let forwarded = RwSignal::new(false);
    // The leader tab forwards Kustomer status changes to the gateway, while inheritance is on.
    let forward = move |change: UserStatusChanged| {
        let ready = agent.session.with_untracked(Option::is_some)
            && tabs.is_leader()
            && agent
                .inheritance
                .with_untracked(|v| v.as_ref().is_some_and(|v| v.settings.enabled));
        if ready {
            forwarded.set(true);
            let at = iso_time::parse_utc_ms(&change.at);
            leptos::task::spawn_local(agent.kustomer_status(change.status_id, change.name, at));
        }
    };
    Effect::new(move |handled: Option<Option<UserStatusChanged>>| {
        let change = bridge.state.with(|s| s.user_status.clone());
        if let Some(new) = change
            .clone()
            .filter(|c| Some(c) != handled.flatten().as_ref())
        {
            forward(new);
        }
        change
    });
    // A tab that becomes leader forwards the latest Kustomer status it saw: a change that
    // arrived during the handover reached no leader. Sent again, it is "already there".
    Effect::new(move |was_leader: Option<bool>| {
        let leader = tabs.role.get() == Role::Leader;
        if leader && was_leader == Some(false) {
            if let Some(latest) = bridge.state.with_untracked(|s| s.user_status.clone()) {
                log.info("leader now: forwarding the latest Kustomer status");
                forward(latest);
            }
        }
        leader
    });
    // Screen pop: the leader tab opens the call's Kustomer conversation once it is known
    // (from the CRM sync), once per call.
    Effect::new(move |popped: Option<Option<i64>>| {
        let popped = popped.flatten();
        let target = agent.state.with(|s| {
            let call = s.call.as_ref().filter(|c| {
                matches!(
                    c.state,
                    adapter_core::agent_events::CallState::Ringing
                        | adapter_core::agent_events::CallState::Connected
                )
            })?;
            Some((
                call.call_id,
                call.customer_id.clone()?,
                call.conversation_id.clone()?,
            ))
        });
        match target {
            Some((call_id, customer_id, conversation_id))
                if popped != Some(call_id) && tabs.is_leader() =>
            {
                log.info(format!("screen pop: conversation {conversation_id}"));
                bridge.send(AdapterToHost::OpenConversation {
                    customer_id,
                    conversation_id,
                });
                Some(call_id)
            }
            _ => popped,
        }
    });
    // A session belongs to one Kustomer user: another user in this browser starts signed out.
    Effect::new(move || {
        let host_user = bridge.state.with(|s| s.user.as_ref().map(|u| u.id.clone()));
        let session_user = agent
            .session
            .with(|s| s.as_ref().map(|s| s.kustomer_user_id.clone()));
        if let (Some(host_user), Some(session_user)) = (host_user, session_user) {
            if host_user != session_user {
                log.warn("the Kustomer user changed: signing out of the contact center");
                leptos::task::spawn_local(agent.sign_out());
            }
        }
    });
    // An incoming call or chat rings: bring the adapter up, once per call.
    Effect::new(move |rung: Option<Option<i64>>| {
        let ringing = agent.state.with(|s| {
            s.call
                .as_ref()
                .filter(|c| c.state == adapter_core::agent_events::CallState::Ringing)
                .map(|c| c.call_id)
        });
        if ringing.is_some() && ringing != rung.flatten() {
            minimised.set.set(false);
            bridge.send(AdapterToHost::Open {});
        }
        ringing
    });

    // The host's language wins over the browser's.
    Effect::new(move || {
        let lang = bridge
            .state
            .with(|s| s.lang.as_deref().and_then(Lang::from_tag));
        if let Some(lang) = lang.filter(|lang| *lang != i18n.lang.get_untracked()) {
            i18n.lang.set(lang);
        }
    });
    // Tell the host how much room the adapter needs.
    Effect::new(move || {
        let height = if minimised.value.get() {
            MINIMISED_HEIGHT
        } else {
            RESTORED_HEIGHT
        };
        bridge.send(AdapterToHost::Resize { height });
    });
    // Click-to-call fills the dial pad (the agent still clicks Call) and brings the adapter up.
    // The host state changes for other reasons too: only a new click counts.
    Effect::new(move |handled: Option<u64>| {
        let click = bridge.state.with(|s| s.click_to_call.clone());
        match click {
            Some(event) if Some(event.seq) != handled => {
                pad.update(|p| p.fill(&event.request));
                minimised.set.set(false);
                bridge.send(AdapterToHost::Open {});
                log.info(format!("click-to-call #{} filled the dial pad", event.seq));
                event.seq
            }
            _ => handled.unwrap_or_default(),
        }
    });

    view! {
        <main
            class="adapter"
            class:minimised=move || minimised.value.get()
            aria-label=i18n.text(Text::AdapterLabel)
            data-tab-role=move || format!("{:?}", tabs.role.get()).to_ascii_lowercase()
        >
            <Header minimised=minimised.value on_toggle=toggle agent=agent />
            <div id="adapter-body" class="adapter-body" hidden=move || minimised.value.get()>
                <ConnectionLine state=link />
                <Show when=standalone>
                    <Notice
                        kind="standalone"
                        text=Signal::derive(move || i18n.t(Text::Standalone).to_string())
                        detail=Signal::derive(move || match bridge.mode.get() {
                            BridgeMode::Standalone(reason) => reason.to_string(),
                            _ => String::new(),
                        })
                    />
                </Show>
                <Show when=move || storage_problem.get().is_some()>
                    <Notice
                        kind="storage"
                        text=Signal::derive(move || i18n.t(Text::StorageBlocked).to_string())
                        detail=Signal::derive(move || storage_problem.get().unwrap_or_default())
                    />
                </Show>
                <Show when=move || !signed_in()>
                    <SignIn agent=agent user=user standalone=Signal::derive(standalone) />
                </Show>
                <Show when=follower>
                    <div class="notice notice-other-tab" role="note">
                        <p>{i18n.text(Text::ActiveInAnotherTab)}</p>
                        <p hidden=move || !tabs.leader_in_call.get()>{i18n.text(Text::OtherTabInCall)}</p>
                        <button
                            type="button"
                            class="button use-here"
                            disabled=move || tabs.leader_in_call.get()
                            on:click=move |_| {
                                let _ = tabs.use_here();
                            }
                        >
                            {i18n.text(Text::UseHere)}
                        </button>
                    </div>
                </Show>
                <Show when=move || signed_in() && (agent.browsers.get() >= 2)>
                    <Notice
                        kind="other-browser"
                        text=Signal::derive(move || i18n.t(Text::OtherBrowser).to_string())
                        detail=Signal::derive(String::new)
                    />
                </Show>
                <Show when=move || signed_in() && inheriting() && !forwarded.get()>
                    <Notice
                        kind="login-status"
                        text=Signal::derive(move || i18n.t(Text::LoginNotInherited).to_string())
                        detail=Signal::derive(String::new)
                    />
                </Show>
                <CallPanel agent=agent caller=caller />
                {move || outcome().map(|(kind, text)| view! {
                    <p class=format!("outcome outcome-{kind}") role="status">{text}</p>
                })}
                <div class="dial-pad-slot" hidden=move || !dial_pad_shown()>
                    <DialPad
                        pad=pad
                        default_country=country
                        customer=customer
                        call_blocked=call_blocked
                        on_call=place_call
                    />
                </div>
            </div>
            <footer class="adapter-footer" hidden=move || minimised.value.get()>
                <Show when=signed_in>
                    <span class="signed-in-as">
                        {move || agent.session.with(|s| s.as_ref().map(|s| s.agent_email.clone()))}
                    </span>
                    <button type="button" class="button sign-out" on:click=move |_| leptos::task::spawn_local(agent.sign_out())>
                        {i18n.text(Text::SignOut)}
                    </button>
                </Show>
                <Diagnostics log=log />
            </footer>
        </main>
    }
}
