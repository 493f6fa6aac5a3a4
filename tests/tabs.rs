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

async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
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
async fn three_tabs_elect_one_leader_and_a_closed_leader_is_replaced_within_two_seconds() {
    let channel = unique("three");
    let mut a = open_tab(&channel);
    let b = open_tab(&channel);
    let c = open_tab(&channel);
    sleep(1_500).await;
    assert_eq!(leaders(&[&a, &b, &c]), 1, "exactly one leader");
    // Make sure `a` is the leader, then close it.
    if !a.leader.is_leader() {
        assert!(a.leader.use_here().is_ok());
        sleep(300).await;
    }
    assert!(a.leader.is_leader());
    assert_eq!(leaders(&[&a, &b, &c]), 1);
    let closed_at = js_sys::Date::now();
    a._mounted = None;
    while leaders(&[&b, &c]) != 1 {
        sleep(50).await;
        let waited = js_sys::Date::now() - closed_at;
        assert!(waited < 2_000.0, "no new leader after {waited} ms");
    }
    assert_eq!(leaders(&[&b, &c]), 1);
}

#[wasm_bindgen_test]
async fn use_here_is_refused_while_the_leader_is_in_a_call() {
    let channel = unique("call");
    let a = open_tab(&channel);
    sleep(1_000).await;
    let b = open_tab(&channel);
    sleep(1_000).await;
    assert!(a.leader.is_leader(), "the first tab leads");
    assert_eq!(b.leader.role.get_untracked(), Role::Follower);
    a.in_call.set(true);
    sleep(600).await;
    assert!(b.leader.leader_in_call.get_untracked());
    assert!(b.leader.use_here().is_err());
    a.in_call.set(false);
    sleep(600).await;
    assert!(b.leader.use_here().is_ok());
    sleep(600).await;
    assert!(b.leader.is_leader());
    assert!(!a.leader.is_leader());
}
