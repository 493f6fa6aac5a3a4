//! Browser tests of the widget (wasm-bindgen-test in headless Chromium): components mounted
//! into a fresh element, acted on, then read back from the DOM.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use adapter_core::{
    agent_events::{AgentState, CallControl, CallState, CallView, Direction, StatusView},
    backoff::Backoff,
    connection::ConnectionState,
    host_protocol::KustomerUser,
};
use kustomer_adapter::{
    agent::{use_agent, Agent, GatewaySaid, Session, StatusOption},
    bridge::{HostChoice, StandaloneReason, UseHostBridgeOptions},
    components::{CallPanel, ConnectionLine, Header, SignIn, StatusMenu},
    crash,
    debug_log::DebugLog,
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

/// Whether `selector` is on screen in `root`: there, and inside nothing hidden.
fn shown(root: &web_sys::HtmlElement, selector: &str) -> bool {
    root.query_selector(selector)
        .unwrap()
        .is_some_and(|element| element.closest("[hidden]").unwrap().is_none())
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

/// An agent whose gateway refuses connections: its signals are set by the test.
fn offline_agent() -> Agent {
    use_agent(
        Ok("http://127.0.0.1:1".into()),
        KeyValueStore::memory(StorageError::Unavailable),
        Backoff::default(),
        DebugLog::default(),
    )
}

/// Mounts `view` (built with an agent whose gateway refuses connections, in English) into a
/// fresh element; returns the element, the agent, and the mount (unmounted when dropped).
fn mount_with_agent<V: IntoView + 'static>(
    view: impl FnOnce(Agent) -> V + 'static,
) -> (
    web_sys::HtmlElement,
    Agent,
    leptos::mount::UnmountHandle<V::State>,
) {
    let root = container();
    let agent = std::rc::Rc::new(std::cell::Cell::new(None));
    let mounted = leptos::mount::mount_to(root.clone(), {
        let agent = std::rc::Rc::clone(&agent);
        move || {
            in_lang(Lang::En);
            let a = offline_agent();
            agent.set(Some(a));
            view(a)
        }
    });
    let agent = agent.get().expect("the view was built");
    (root, agent, mounted)
}

fn status(id: i64, name: &str) -> StatusView {
    StatusView {
        id,
        name: name.into(),
    }
}

fn option(id: i64, name: &str, color: &str, selectable: bool) -> StatusOption {
    StatusOption {
        id,
        name: name.into(),
        color: Some(color.into()),
        selectable,
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
        let agent = offline_agent();
        view! {
            <Header
                agent=agent
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
    assert!(!shown(&first, ".notice-storage"), "storage works here");
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
    assert!(shown(&root, ".notice-storage"));
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

#[wasm_bindgen_test]
async fn the_status_menu_offers_only_selectable_statuses_and_shows_the_gateways() {
    let (root, agent, _mounted) = mount_with_agent(move |a| view! { <StatusMenu agent=a /> });
    agent.as_if_the_gateway_said(GatewaySaid::Statuses(vec![
        option(0, "Available", "green", true),
        option(-2, "Break", "orange", true),
        option(-7, "In-call", "blue", false),
    ]));
    agent.as_if_the_gateway_said(GatewaySaid::State(Box::new(AgentState {
        status: Some(status(-7, "In-call")),
        next_status: Some(status(-2, "Break")),
        ..AgentState::default()
    })));
    tick().await;
    tick().await;
    let select: web_sys::HtmlSelectElement = find(&root, "select.status-select").unchecked_into();
    assert_eq!(select.value(), "-7", "the gateway's status is shown");
    let in_call: web_sys::HtmlOptionElement = find(&root, "option[value='-7']").unchecked_into();
    assert!(in_call.disabled(), "a system status cannot be chosen");
    assert_eq!(in_call.text(), "In-call");
    assert_eq!(
        in_call.get_attribute("title").as_deref(),
        Some("Set by the contact center")
    );
    assert_eq!(
        find(&root, ".next-status-name").text_content().unwrap(),
        "Next: Break"
    );
    assert!(find(&root, ".status-chip")
        .class_name()
        .contains("chip-blue"));
    // The call ends: the next status is the status, and the pending line goes.
    agent.as_if_the_gateway_said(GatewaySaid::State(Box::new(AgentState {
        status: Some(status(-2, "Break")),
        ..AgentState::default()
    })));
    tick().await;
    tick().await;
    assert_eq!(select.value(), "-2");
    assert!(find(&root, ".next-status").hidden());
}

#[wasm_bindgen_test]
async fn the_call_panel_shows_only_the_controls_the_upstream_offers() {
    let (root, agent, _mounted) = mount_with_agent(move |a| view! { <CallPanel agent=a /> });
    assert!(!shown(&root, ".call-panel"), "no call, no panel");
    let connected_at = js_sys::Date::now() as i64 - 65_000;
    agent.as_if_the_gateway_said(GatewaySaid::State(Box::new(AgentState {
        call: Some(CallView {
            call_id: 7,
            direction: Direction::Inbound,
            state: CallState::Connected,
            number: Some("+14155552671".into()),
            connected_at_ms: Some(connected_at),
            ..CallView::default()
        }),
        ..AgentState::default()
    })));
    tick().await;
    let panel = find(&root, ".call-panel");
    assert_eq!(
        panel.get_attribute("data-state").as_deref(),
        Some("connected")
    );
    assert_eq!(
        find(&root, ".call-kind").text_content().unwrap(),
        "Incoming call"
    );
    assert_eq!(find(&root, ".call-timer").text_content().unwrap(), "1:05");
    assert_eq!(
        root.query_selector_all(".call-controls button")
            .unwrap()
            .length(),
        0,
        "the public CCAI API offers no controls: none is shown"
    );
    agent.as_if_the_gateway_said(GatewaySaid::Capabilities(vec![
        CallControl::Hold,
        CallControl::End,
        CallControl::Answer,
        CallControl::Dtmf,
    ]));
    tick().await;
    let labels: Vec<String> = (0..root
        .query_selector_all(".call-controls button")
        .unwrap()
        .length())
        .filter_map(|i| {
            root.query_selector_all(".call-controls button")
                .unwrap()
                .item(i)
        })
        .filter_map(|node| node.text_content())
        .collect();
    assert_eq!(labels, ["Hold", "End"], "offered and valid while connected");
    assert!(root
        .query_selector(".control-dtmf input")
        .unwrap()
        .is_some());
}

#[wasm_bindgen_test]
async fn sign_in_with_another_email_than_the_kustomer_users_is_explained_not_sent() {
    let user = RwSignal::new(Some(KustomerUser {
        id: "u1".into(),
        email: "ada@example.com".into(),
        name: None,
    }));
    let (root, agent, _mounted) = mount_with_agent(
        move |a| view! { <SignIn agent=a user=user standalone=Signal::derive(|| false) /> },
    );
    tick().await;
    let email: web_sys::HtmlInputElement = find(&root, "input[name='email']").unchecked_into();
    assert_eq!(
        email.value(),
        "ada@example.com",
        "the Kustomer user's email is offered"
    );
    email.set_value("grace@example.com");
    email
        .dispatch_event(&web_sys::Event::new("input").unwrap())
        .unwrap();
    let requests = FetchRecorder::install();
    find(&root, "button[type='submit']").click();
    tick().await;
    let error = find(&root, ".form-error");
    assert!(!error.hidden());
    assert!(error
        .text_content()
        .unwrap()
        .starts_with("You are signed in to Kustomer as ada@example.com."));
    assert_eq!(agent.session().get_untracked(), None::<Session>);
    assert_eq!(requests.sign_ins(), 0, "no sign-in request left the widget");
    // The control: with the Kustomer user's own email, the same button sends it.
    email.set_value("ada@example.com");
    email
        .dispatch_event(&web_sys::Event::new("input").unwrap())
        .unwrap();
    find(&root, "button[type='submit']").click();
    for _ in 0..300 {
        if requests.sign_ins() > 0 {
            break;
        }
        gloo_timers::future::TimeoutFuture::new(10).await;
    }
    assert!(
        requests.sign_ins() >= 1,
        "the right email's sign-in was sent: {:?}",
        requests.requests()
    );
}

/// Records the requests the widget makes through `window.fetch` (then passes them on) until
/// dropped.
struct FetchRecorder {
    original: wasm_bindgen::JsValue,
}

impl FetchRecorder {
    fn install() -> FetchRecorder {
        let window = wasm_bindgen::JsValue::from(web_sys::window().unwrap());
        let original = js_sys::Reflect::get(&window, &"fetch".into()).unwrap();
        js_sys::Reflect::set(&window, &"__adapterTestFetch".into(), &original).unwrap();
        js_sys::Reflect::set(
            &window,
            &"__adapterTestFetches".into(),
            &js_sys::Array::new(),
        )
        .unwrap();
        let recorder = js_sys::Function::new_with_args(
            "input, init",
            "const request = new Request(input, init); \
             window.__adapterTestFetches.push(request.method + ' ' + request.url); \
             return window.__adapterTestFetch.call(window, input, init);",
        );
        js_sys::Reflect::set(&window, &"fetch".into(), &recorder).unwrap();
        FetchRecorder { original }
    }

    fn requests(&self) -> Vec<String> {
        let window = wasm_bindgen::JsValue::from(web_sys::window().unwrap());
        js_sys::Array::from(&js_sys::Reflect::get(&window, &"__adapterTestFetches".into()).unwrap())
            .iter()
            .filter_map(|v| v.as_string())
            .collect()
    }

    /// `POST …/api/v1/sessions` requests seen.
    fn sign_ins(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with("POST ") && r.ends_with("/api/v1/sessions"))
            .count()
    }
}

impl Drop for FetchRecorder {
    fn drop(&mut self) {
        let window = wasm_bindgen::JsValue::from(web_sys::window().unwrap());
        let _ = js_sys::Reflect::set(&window, &"fetch".into(), &self.original);
    }
}
