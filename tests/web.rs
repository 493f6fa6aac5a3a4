//! Browser tests of the widget (wasm-bindgen-test in headless Chromium): components mounted
//! into a fresh element, acted on, then read back from the DOM.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use adapter_core::connection::ConnectionState;
use kustomer_adapter::{
    bridge::{HostChoice, StandaloneReason, UseHostBridgeOptions},
    components::{ConnectionLine, Header},
    crash,
    gateway::{fetch_health, GatewayError, UseGatewayConnectionOptions},
    i18n::{I18n, Lang},
    storage::{KeyValueStore, StorageError},
    AdapterShell, AdapterShellProps, MINIMISED_KEY,
};
use leptos::{prelude::*, task::tick};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn container() -> web_sys::HtmlElement {
    let document = document();
    let element = document.create_element("section").unwrap();
    document.body().unwrap().append_child(&element).unwrap();
    element.unchecked_into()
}

fn find(root: &web_sys::HtmlElement, selector: &str) -> web_sys::HtmlElement {
    root.query_selector(selector)
        .unwrap()
        .unwrap_or_else(|| panic!("no {selector}"))
        .unchecked_into()
}

fn in_lang(lang: Lang) {
    provide_context(I18n {
        lang: RwSignal::new(lang),
    });
}

/// No host: the shell tests below are about the shell itself.
fn no_host() -> UseHostBridgeOptions {
    UseHostBridgeOptions {
        host: HostChoice::Standalone(StandaloneReason::Missing),
        ..Default::default()
    }
}

/// A gateway address that refuses connections, so shells under test never reach one.
fn no_gateway() -> UseGatewayConnectionOptions {
    UseGatewayConnectionOptions {
        base_url: Some("http://127.0.0.1:1".into()),
        ..Default::default()
    }
}

#[wasm_bindgen_test]
async fn connection_line_shows_each_state_with_its_reason() {
    let root = container();
    let state = RwSignal::new(ConnectionState::Connecting { attempt: 1 });
    let _mounted = leptos::mount::mount_to(root.clone(), move || {
        in_lang(Lang::En);
        view! { <ConnectionLine state=state /> }
    });
    let line = find(&root, ".connection-line");
    assert_eq!(
        line.get_attribute("data-state").as_deref(),
        Some("connecting")
    );
    assert_eq!(line.text_content().unwrap(), "Connecting to the gateway…");

    state.set(ConnectionState::Connected);
    tick().await;
    assert_eq!(
        line.get_attribute("data-state").as_deref(),
        Some("connected")
    );
    assert_eq!(line.text_content().unwrap(), "Connected");

    state.set(ConnectionState::Offline {
        attempt: 2,
        retry_in: Duration::from_secs(1),
        reason: "network error: refused".into(),
    });
    tick().await;
    assert_eq!(line.get_attribute("data-state").as_deref(), Some("offline"));
    assert_eq!(
        line.text_content().unwrap(),
        "Gateway unreachable, retrying (attempt 2)"
    );
    assert_eq!(line.title(), "network error: refused");
}

#[wasm_bindgen_test]
async fn header_toggle_reports_clicks_and_labels_itself_in_french() {
    let root = container();
    let minimised = RwSignal::new(false);
    let clicks = RwSignal::new(0);
    let _mounted = leptos::mount::mount_to(root.clone(), move || {
        in_lang(Lang::Fr);
        view! {
            <Header
                minimised=minimised
                on_toggle=Callback::new(move |()| {
                    clicks.update(|n| *n += 1);
                    minimised.update(|m| *m = !*m);
                })
            />
        }
    });
    let button = find(&root, "button.minimise-toggle");
    assert_eq!(
        button.get_attribute("aria-label").as_deref(),
        Some("Réduire l’adaptateur")
    );
    assert_eq!(
        button.get_attribute("aria-expanded").as_deref(),
        Some("true")
    );
    button.click();
    tick().await;
    assert_eq!(clicks.get_untracked(), 1);
    assert_eq!(
        button.get_attribute("aria-expanded").as_deref(),
        Some("false")
    );
    assert_eq!(
        button.get_attribute("aria-label").as_deref(),
        Some("Agrandir l’adaptateur")
    );
}

#[wasm_bindgen_test]
async fn the_minimised_state_is_kept_in_local_storage_across_mounts() {
    let storage = window().local_storage().unwrap().unwrap();
    storage.remove_item(MINIMISED_KEY).unwrap();
    let mount = |root: web_sys::HtmlElement| {
        leptos::mount::mount_to(root, move || {
            in_lang(Lang::En);
            AdapterShell(AdapterShellProps {
                store: KeyValueStore::open(),
                gateway: no_gateway(),
                host: no_host(),
            })
        })
    };

    let first = container();
    let mounted = mount(first.clone());
    assert!(!find(&first, "#adapter-body").hidden());
    assert!(
        first.query_selector(".notice-storage").unwrap().is_none(),
        "storage works here"
    );
    find(&first, "button.minimise-toggle").click();
    tick().await;
    assert!(find(&first, "#adapter-body").hidden());
    assert_eq!(
        storage.get_item(MINIMISED_KEY).unwrap().as_deref(),
        Some("true")
    );
    drop(mounted);

    let second = container();
    let _mounted = mount(second.clone());
    assert!(
        find(&second, "#adapter-body").hidden(),
        "a new mount starts minimised"
    );
    storage.remove_item(MINIMISED_KEY).unwrap();
}

#[wasm_bindgen_test]
async fn blocked_storage_shows_a_note_and_the_toggle_still_works() {
    let root = container();
    let _mounted = leptos::mount::mount_to(root.clone(), move || {
        in_lang(Lang::En);
        AdapterShell(AdapterShellProps {
            store: KeyValueStore::memory(StorageError::Blocked("SecurityError".into())),
            gateway: no_gateway(),
            host: no_host(),
        })
    });
    tick().await;
    let notice = find(&root, ".notice-storage");
    assert!(notice.text_content().unwrap().contains("blocks storage"));
    assert!(notice.title().contains("SecurityError"));
    find(&root, "button.minimise-toggle").click();
    tick().await;
    assert!(find(&root, "#adapter-body").hidden());
}

#[wasm_bindgen_test]
fn the_memory_store_keeps_values() {
    let mut store = KeyValueStore::memory(StorageError::Unavailable);
    assert_eq!(store.get("k"), None);
    store.set("k", "v").unwrap();
    assert_eq!(store.get("k").as_deref(), Some("v"));
    assert_eq!(store.problem(), Some(&StorageError::Unavailable));
}

#[wasm_bindgen_test]
fn the_crash_panel_is_readable_and_reloads_the_same_url() {
    crash::show_panel("panicked at src/example.rs:1:1: boom").unwrap();
    crash::show_panel("panicked at src/example.rs:2:2: boom again").unwrap();
    let document = document();
    let panels = document.query_selector_all(".crash-panel").unwrap();
    assert_eq!(panels.length(), 1, "a second panic replaces the panel");
    let panel = document.get_element_by_id(crash::PANEL_ID).unwrap();
    assert_eq!(panel.get_attribute("role").as_deref(), Some("alert"));
    let text = panel.text_content().unwrap();
    assert!(text.contains("internal error"), "{text}");
    assert!(text.contains("boom again"), "{text}");
    let reload = panel.query_selector("a.crash-reload").unwrap().unwrap();
    assert_eq!(
        reload.get_attribute("href"),
        Some(window().location().href().unwrap())
    );
    panel.remove();
}

#[wasm_bindgen_test]
async fn an_unreachable_gateway_is_a_network_error_not_a_panic() {
    let error = fetch_health("http://127.0.0.1:1", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Network(_)), "{error:?}");
}
