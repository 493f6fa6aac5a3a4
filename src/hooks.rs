//! Behaviours of the widget's shell as named hooks, each testable alone: the shell is hook
//! calls plus the view.

use adapter_core::{
    agent_events::CallState,
    host_protocol::{AdapterToHost, UserStatusChanged},
    iso_time,
    lang::Lang,
    tabs::Role,
};
use leptos::prelude::*;

use wasm_bindgen::{closure::Closure, JsCast};

use crate::{
    agent::Agent,
    bridge::{BridgeMode, UseHostBridgeReturn},
    debug_log::DebugLog,
    dial::DialPad,
    effects::{effect, effect_with},
    i18n::I18n,
    tabs::TabLeader,
};

/// The Performance API mark set when the widget is ready: the host's handshake is done (or the
/// widget runs standalone) and the screen that follows it has painted.
pub const READY_MARK: &str = "adapter-ready";

/// Sets [`READY_MARK`] once: after the handshake, at the first paint that follows it.
pub fn use_ready_mark(bridge: UseHostBridgeReturn) {
    effect_with(move |marked: Option<bool>| {
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

/// The leader tab forwards Kustomer status changes to the gateway while inheritance is on, and
/// a tab that becomes leader forwards the latest one it saw (a change during the handover
/// reached no leader; sent again, it is "already there"). The signal says whether one was
/// forwarded since the widget started.
pub fn use_kustomer_status_forwarding(
    agent: Agent,
    bridge: UseHostBridgeReturn,
    tabs: TabLeader,
    log: DebugLog,
) -> Signal<bool> {
    let forwarded = RwSignal::new(false);
    let forward = move |change: UserStatusChanged| {
        let ready = agent.session().with_untracked(Option::is_some)
            && tabs.is_leader()
            && agent.inheriting().get_untracked();
        if ready {
            forwarded.set(true);
            let at = iso_time::parse_utc_ms(&change.at);
            leptos::task::spawn_local(agent.kustomer_status(change.status_id, change.name, at));
        }
    };
    effect_with(move |handled: Option<Option<UserStatusChanged>>| {
        let change = bridge.state.with(|s| s.user_status.clone());
        if let Some(new) = change
            .clone()
            .filter(|c| Some(c) != handled.flatten().as_ref())
        {
            forward(new);
        }
        change
    });
    effect_with(move |was_leader: Option<bool>| {
        let leader = tabs.role.get() == Role::Leader;
        if leader && was_leader == Some(false) {
            if let Some(latest) = bridge.state.with_untracked(|s| s.user_status.clone()) {
                log.info("leader now: forwarding the latest Kustomer status");
                forward(latest);
            }
        }
        leader
    });
    forwarded.into()
}

/// Screen pop: the leader tab opens the call's Kustomer conversation once it is known (from
/// the CRM sync), once per call, also when it becomes the leader after the conversation came.
pub fn use_screen_pop(agent: Agent, bridge: UseHostBridgeReturn, tabs: TabLeader, log: DebugLog) {
    effect_with(move |popped: Option<Option<i64>>| {
        let popped = popped.flatten();
        // Tracked: a conversation that came while the tabs were still electing their leader
        // is opened once one leads.
        let leads = tabs.leads();
        let target = agent.state().with(|s| {
            let call = s
                .call
                .as_ref()
                .filter(|c| matches!(c.state, CallState::Ringing | CallState::Connected))?;
            Some((
                call.call_id,
                call.customer_id.clone()?,
                call.conversation_id.clone()?,
            ))
        });
        match target {
            Some((call_id, customer_id, conversation_id)) if popped != Some(call_id) && leads => {
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
}

/// A session belongs to one Kustomer user: another user in this browser starts signed out.
pub fn use_one_kustomer_user(agent: Agent, bridge: UseHostBridgeReturn, log: DebugLog) {
    effect(move || {
        let host_user = bridge.state.with(|s| s.user.as_ref().map(|u| u.id.clone()));
        let session_user = agent
            .session()
            .with(|s| s.as_ref().map(|s| s.kustomer_user_id.clone()));
        if let (Some(host_user), Some(session_user)) = (host_user, session_user) {
            if host_user != session_user {
                log.warn("the Kustomer user changed: signing out of the contact center");
                leptos::task::spawn_local(agent.sign_out());
            }
        }
    });
}

/// An incoming call or chat rings: restore the adapter and ask the host to open it, once per
/// call.
pub fn use_ringing_brings_up(
    agent: Agent,
    bridge: UseHostBridgeReturn,
    minimised: WriteSignal<bool>,
) {
    effect_with(move |rung: Option<Option<i64>>| {
        let ringing = agent.state().with(|s| {
            s.call
                .as_ref()
                .filter(|c| c.state == CallState::Ringing)
                .map(|c| c.call_id)
        });
        if ringing.is_some() && ringing != rung.flatten() {
            minimised.set(false);
            bridge.send(AdapterToHost::Open {});
        }
        ringing
    });
}

/// The host's language wins over the browser's.
pub fn use_host_language(bridge: UseHostBridgeReturn, i18n: I18n) {
    effect(move || {
        let lang = bridge
            .state
            .with(|s| s.lang.as_deref().and_then(Lang::from_tag));
        if let Some(lang) = lang.filter(|lang| *lang != i18n.lang.get_untracked()) {
            i18n.lang.set(lang);
        }
    });
}

/// Tells the host how much room the adapter needs.
pub fn use_host_height(bridge: UseHostBridgeReturn, minimised: Signal<bool>) {
    effect(move || {
        let height = if minimised.get() {
            crate::MINIMISED_HEIGHT
        } else {
            crate::RESTORED_HEIGHT
        };
        bridge.send(AdapterToHost::Resize { height });
    });
}

/// Click-to-call fills the dial pad (the agent still clicks Call) and brings the adapter up.
/// The host state changes for other reasons too: only a new click counts.
pub fn use_click_to_call(
    bridge: UseHostBridgeReturn,
    pad: RwSignal<DialPad>,
    minimised: WriteSignal<bool>,
    log: DebugLog,
) {
    effect_with(move |handled: Option<u64>| {
        let click = bridge.state.with(|s| s.click_to_call.clone());
        match click {
            Some(event) if Some(event.seq) != handled => {
                pad.update(|p| p.fill(&event.request));
                minimised.set(false);
                bridge.send(AdapterToHost::Open {});
                log.info(format!("click-to-call #{} filled the dial pad", event.seq));
                event.seq
            }
            _ => handled.unwrap_or_default(),
        }
    });
}
