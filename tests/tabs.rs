//! Browser tests of tab coordination: real `BroadcastChannel`s in headless Chromium. Two or
//! three "tabs" are mounted side by side in one page (each with its own channel object, as
//! separate tabs would have), elect one leader, and hand over when the leader goes.
#![cfg(target_arch = "wasm32")]

use adapter_core::tabs::Role;
use kustomer_adapter::tabs::{use_tab_leader, TabLeader};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

struct Tab {
    leader: TabLeader,
    in_call: RwSignal<bool>,
    _mounted: Option<leptos::mount::UnmountHandle<leptos::tachys::view::any_view::AnyViewState>>,
}

fn open_tab(channel: &str) -> Tab {
    let document = document();
    let root: web_sys::HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&root).unwrap();
    let found = std::rc::Rc::new(std::cell::Cell::new(None));
    let in_call = RwSignal::new(false);
    let channel = channel.to_owned();
    let mounted = leptos::mount::mount_to(root, {
        let found = std::rc::Rc::clone(&found);
        move || {
            let leader = use_tab_leader(
                Signal::derive(move || Some(channel.clone())),
                in_call.into(),
            );
            found.set(Some(leader));
            view! { <p>"tab"</p> }.into_any()
        }
    });
    Tab {
        leader: found.get().unwrap(),
        in_call,
        _mounted: Some(mounted),
    }
}

/// Waits (up to 10 s, a generous functional deadline) until `condition` holds, polling every
/// 20 ms; returns how long it took, in ms. How fast the election is, is the core's test (on a
/// simulated clock, `adapter_core::tabs`); here only that it happens.
async fn eventually(what: &str, condition: impl Fn() -> bool) -> f64 {
    let started = js_sys::Date::now();
    loop {
        if condition() {
            return js_sys::Date::now() - started;
        }
        let waited = js_sys::Date::now() - started;
        assert!(waited < 10_000.0, "not within 10 s: {what}");
        gloo_timers::future::TimeoutFuture::new(20).await;
    }
}

fn role(tab: &Tab) -> Role {
    tab.leader.role.get_untracked()
}

fn leaders(tabs: &[&Tab]) -> usize {
    tabs.iter()
        .filter(|t| t.leader.role.get_untracked() == Role::Leader)
        .count()
}

fn unique(name: &str) -> String {
    format!("test-{name}-{}", js_sys::Math::random())
}

#[wasm_bindgen_test]
async fn three_tabs_elect_one_leader_and_a_closed_leader_is_replaced() {
    let channel = unique("three");
    let mut a = open_tab(&channel);
    let b = open_tab(&channel);
    let c = open_tab(&channel);
    eventually("one leader and two followers", || {
        let roles = [role(&a), role(&b), role(&c)];
        leaders(&[&a, &b, &c]) == 1
            && roles
                .iter()
                .all(|r| matches!(r, Role::Leader | Role::Follower))
    })
    .await;
    // Make sure `a` is the leader, then close it.
    if !a.leader.is_leader() {
        assert!(a.leader.use_here().is_ok());
        eventually("`a` leads after use here", || {
            a.leader.is_leader() && leaders(&[&a, &b, &c]) == 1
        })
        .await;
    }
    a._mounted = None;
    let handover = eventually("one new leader among the others", || {
        leaders(&[&b, &c]) == 1
    })
    .await;
    // Reported, not judged: the budget is the core's simulated-clock test.
    web_sys::console::log_1(&format!("tabs: a closed leader was replaced in {handover} ms").into());
}

#[wasm_bindgen_test]
async fn use_here_is_refused_while_the_leader_is_in_a_call() {
    let channel = unique("call");
    let a = open_tab(&channel);
    // A tab shows itself leader until it joins the election (it listens first): wait for the
    // election's own answer.
    eventually("the first tab joins the election", || {
        role(&a) != Role::Leader
    })
    .await;
    eventually("the first tab leads", || a.leader.is_leader()).await;
    let b = open_tab(&channel);
    eventually("the second tab follows", || role(&b) == Role::Follower).await;
    assert!(a.leader.is_leader(), "the first tab still leads");
    a.in_call.set(true);
    eventually("the follower knows the leader is in a call", || {
        b.leader.leader_in_call.get_untracked()
    })
    .await;
    assert!(b.leader.use_here().is_err());
    a.in_call.set(false);
    eventually("the follower knows the call ended", || {
        !b.leader.leader_in_call.get_untracked()
    })
    .await;
    assert!(b.leader.use_here().is_ok());
    eventually("the second tab leads, the first follows", || {
        b.leader.is_leader() && !a.leader.is_leader()
    })
    .await;
}
