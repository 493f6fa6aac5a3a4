//! Browser tests of the host bridge: origin pinning, the allowed Kustomer origins, bad input,
//! floods, request correlation, the Cards SDK transport against a stand-in `window.Kustomer`,
//! and click-to-call into the dial pad.
#![cfg(target_arch = "wasm32")]

use std::{cell::RefCell, rc::Rc, time::Duration};

use adapter_core::host_protocol::{AdapterToHost, NoticeLevel};
use kustomer_adapter::{
    bridge::{
        use_host_bridge, BridgeError, BridgeMode, FloodLimits, HostChoice, StandaloneReason,
        UseHostBridgeOptions, UseHostBridgeReturn,
    },
    debug_log::{use_debug_log, DebugLog},
    gateway::UseGatewayConnectionOptions,
    storage::{KeyValueStore, StorageError},
    AdapterShell, AdapterShellProps,
};
use leptos::{prelude::*, task::tick};
use serde_json::{json, Value};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn container() -> web_sys::HtmlElement {
    let element = document().create_element("section").unwrap();
    document().body().unwrap().append_child(&element).unwrap();
    element.unchecked_into()
}

fn own_origin() -> String {
    window().location().origin().unwrap()
}

/// This window plays the host: the bridge is pinned to it and to its origin.
fn host_is_this_window(flood: FloodLimits) -> UseHostBridgeOptions {
    UseHostBridgeOptions {
        host: HostChoice::Window {
            host: window(),
            origin: own_origin(),
        },
        request_timeout: Duration::from_millis(300),
        flood,
    }
}

fn from_host(kind: &str, payload: Value) -> String {
    json!({"protocol": "ccai-adapter", "version": 1, "type": kind, "payload": payload}).to_string()
}

fn post_from_host(raw: &str) {
    window()
        .post_message(&JsValue::from_str(raw), &own_origin())
        .unwrap();
}

/// Waits (up to 3 s) for `condition`, letting messages and the reactive system run.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..300 {
        if condition() {
            return;
        }
        gloo_timers::future::TimeoutFuture::new(10).await;
        tick().await;
    }
    panic!("timed out waiting for: {what}");
}

/// Counts the messages this window receives whose data satisfies `matches`, from the moment it
/// is made. Listening after the bridge did, it sees a message only once the bridge has handled
/// it: waiting for its count is waiting for the bridge, with no fixed delay.
struct Arrivals {
    count: Rc<RefCell<usize>>,
    listener: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl Arrivals {
    fn listen(matches: impl Fn(&JsValue) -> bool + 'static) -> Arrivals {
        let count = Rc::new(RefCell::new(0));
        let seen = Rc::clone(&count);
        let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if matches(&event.data()) {
                    *seen.borrow_mut() += 1;
                }
            },
        );
        window()
            .add_event_listener_with_callback("message", listener.as_ref().unchecked_ref())
            .unwrap();
        Arrivals { count, listener }
    }

    fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until `n` matching messages arrived, then lets the reactive system run.
    async fn wait_for(&self, what: &str, n: usize) {
        eventually(what, || self.count() >= n).await;
        tick().await;
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        let _ = window()
            .remove_event_listener_with_callback("message", self.listener.as_ref().unchecked_ref());
    }
}

fn log_has(log: DebugLog, needle: &str) -> bool {
    log.entries().iter().any(|e| e.text.contains(needle))
}

/// Mounts the whole shell talking to `host`; returns its root and debug log.
fn mount_shell(host: UseHostBridgeOptions) -> (web_sys::HtmlElement, DebugLog, impl Drop) {
    let root = container();
    let log_slot = Rc::new(RefCell::new(None));
    let slot = Rc::clone(&log_slot);
    let mounted = leptos::mount::mount_to(root.clone(), move || {
        *slot.borrow_mut() = Some(use_debug_log());
        AdapterShell(AdapterShellProps {
            store: KeyValueStore::memory(StorageError::Unavailable),
            gateway: UseGatewayConnectionOptions {
                base_url: Some("http://127.0.0.1:1".into()),
                ..Default::default()
            },
            host,
        })
    });
    let log = log_slot.borrow().expect("mounted");
    (root, log, mounted)
}

/// Mounts only the bridge hook; returns it and its debug log.
fn mount_bridge(options: UseHostBridgeOptions) -> (UseHostBridgeReturn, DebugLog, impl Drop) {
    let slot = Rc::new(RefCell::new(None));
    let inner = Rc::clone(&slot);
    let mounted = leptos::mount::mount_to(container(), move || {
        *inner.borrow_mut() = Some((use_host_bridge(options), use_debug_log()));
        view! { <p></p> }
    });
    let (bridge, log) = slot.borrow().expect("mounted");
    (bridge, log, mounted)
}

fn input_value(root: &web_sys::HtmlElement) -> String {
    root.query_selector("#dial-input")
        .unwrap()
        .unwrap()
        .unchecked_into::<web_sys::HtmlInputElement>()
        .value()
}

fn text_of(root: &web_sys::HtmlElement, selector: &str) -> String {
    root.query_selector(selector)
        .unwrap()
        .and_then(|e| e.text_content())
        .unwrap_or_default()
}

#[wasm_bindgen_test]
async fn click_to_call_from_the_pinned_host_fills_the_dial_pad_without_dialling() {
    let (root, _log, _mounted) = mount_shell(host_is_this_window(FloodLimits::default()));
    post_from_host(&from_host(
        "click_to_call",
        json!({"phone": "(415) 555-2671 ext. 12", "customer": {"id": "c1", "name": "Grace Hopper"}}),
    ));
    eventually("the number in the dial pad", || {
        input_value(&root) == "(415) 555-2671 ext. 12"
    })
    .await;
    assert_eq!(
        text_of(&root, ".dial-preview"),
        "Will dial +14155552671 ext. 12"
    );
    assert_eq!(text_of(&root, ".dial-for"), "For Grace Hopper");
    let call = root.query_selector("button.call").unwrap().unwrap();
    assert!(
        call.has_attribute("disabled"),
        "Call stays the agent's decision, and needs sign-in"
    );
    assert_eq!(
        text_of(&root, ".call-blocked"),
        "Sign in to the contact center to place calls."
    );
}

#[wasm_bindgen_test]
async fn the_handshake_sets_user_context_and_language() {
    let (root, _log, _mounted) = mount_shell(host_is_this_window(FloodLimits::default()));
    post_from_host(&from_host(
        "init",
        json!({
            "user": {"id": "u1", "email": "ada@example.com"},
            "lang": "fr-CA",
            "context": {"customer": {"id": "c1", "name": "Grace", "phones": [{"phone": "020 7946 0958", "type": "work"}]}}
        }),
    ));
    eventually("French", || {
        text_of(&root, ".dial-title") == "Numéro à appeler"
    })
    .await;
    let number = root
        .query_selector("button.customer-number")
        .unwrap()
        .unwrap();
    assert_eq!(number.text_content().unwrap(), "020 7946 0958 (work)");
    number.unchecked_ref::<web_sys::HtmlElement>().click();
    tick().await;
    assert_eq!(input_value(&root), "020 7946 0958");
    assert_eq!(text_of(&root, ".dial-for"), "Pour Grace");
}

#[wasm_bindgen_test]
async fn a_frame_of_another_origin_is_ignored() {
    let (root, log, _mounted) = mount_shell(host_is_this_window(FloodLimits::default()));
    // A data: frame has an opaque origin ("null"): another origin, as a hostile frame would be.
    let message = from_host("click_to_call", json!({"phone": "+1 900 555 0100"}));
    let frame: web_sys::HtmlIFrameElement = document()
        .create_element("iframe")
        .unwrap()
        .unchecked_into();
    let script = format!(
        "<script>parent.postMessage({}, {:?});</script>",
        serde_json::to_string(&message).unwrap(),
        own_origin()
    );
    frame.set_src(&format!(
        "data:text/html,{}",
        js_sys::encode_uri_component(&script)
    ));
    document().body().unwrap().append_child(&frame).unwrap();
    eventually("the frame's message to be refused", || {
        log_has(log, "not from the host (last from origin \"null\")")
    })
    .await;
    assert_eq!(input_value(&root), "", "nothing changed");
    frame.remove();
}

/// The simulator that scripts/test.sh starts for these tests: a server on another port.
const FOREIGN_SERVER: Option<&str> = option_env!("ADAPTER_TEST_FOREIGN_SERVER");

#[wasm_bindgen_test]
async fn a_frame_served_on_another_port_is_ignored() {
    let Some(server) = FOREIGN_SERVER else {
        panic!("ADAPTER_TEST_FOREIGN_SERVER is not set: run the browser tests with scripts/test.sh, which starts a simulator for them");
    };
    let (root, log, _mounted) = mount_shell(host_is_this_window(FloodLimits::default()));
    let frame: web_sys::HtmlIFrameElement = document()
        .create_element("iframe")
        .unwrap()
        .unchecked_into();
    // The hostile page's last message, after its 22 protocol messages (one sender, one target:
    // they arrive in order).
    let done = Arrivals::listen(|data| data.as_string().as_deref() == Some("hostile-frame-done"));
    let origin = own_origin();
    let query = format!(
        "adapter={}&host={}&target=parent",
        js_sys::encode_uri_component(&origin),
        js_sys::encode_uri_component(&origin)
    );
    frame.set_src(&format!("{server}/_sim/hostile.html?{query}"));
    document().body().unwrap().append_child(&frame).unwrap();
    let note = format!("not from the host (last from origin {server:?})");
    done.wait_for("the hostile page's last message", 1).await;
    assert!(
        log_has(log, &note),
        "its messages were refused as not from the host"
    );
    assert_eq!(input_value(&root), "", "nothing changed");
    assert!(!log_has(log, "evil@example.com"), "its init was not taken");
    frame.remove();
}

#[wasm_bindgen_test]
async fn a_forged_origin_is_ignored_even_from_the_host_window() {
    let (root, log, _mounted) = mount_shell(host_is_this_window(FloodLimits::default()));
    let init = web_sys::MessageEventInit::new();
    init.set_data(&JsValue::from_str(&from_host(
        "click_to_call",
        json!({"phone": "+1 900 555 0100"}),
    )));
    init.set_origin("http://evil.test");
    init.set_source(Some(window().as_ref()));
    let event = web_sys::MessageEvent::new_with_event_init_dict("message", &init).unwrap();
    window().dispatch_event(&event).unwrap();
    eventually("the forged message to be refused", || {
        log_has(log, "\"http://evil.test\"")
    })
    .await;
    assert_eq!(input_value(&root), "");
}

#[wasm_bindgen_test]
async fn bad_input_is_refused_with_its_reason_and_changes_nothing() {
    let (root, log, _mounted) = mount_shell(host_is_this_window(FloodLimits::default()));
    window()
        .post_message(&js_sys::Object::new(), &own_origin())
        .unwrap();
    post_from_host("{not json");
    post_from_host(
        &json!({"protocol": "ccai-adapter", "version": 2, "type": "click_to_call"}).to_string(),
    );
    post_from_host(
        &json!({"protocol": "ccai-adapter", "version": 1, "type": "dial_now", "id": "h-1"})
            .to_string(),
    );
    post_from_host(&from_host("click_to_call", json!({"phone": 4155552671u64})));
    post_from_host(&from_host(
        "click_to_call",
        json!({"phone": "x".repeat(70_000)}),
    ));
    for code in [
        "protocol messages are JSON text",
        "(not_json)",
        "(unsupported_version): version 2 is not supported",
        "(unknown_type): unknown message type \"dial_now\"",
        "(bad_payload): bad click_to_call payload",
        "(too_large)",
    ] {
        eventually(code, || log_has(log, code)).await;
    }
    assert_eq!(input_value(&root), "", "nothing changed");
}

#[wasm_bindgen_test]
async fn a_flood_is_bounded_and_said_once_per_second() {
    let (root, log, _mounted) = mount_shell(host_is_this_window(FloodLimits {
        capacity: 10,
        per_second: 1,
    }));
    let arrivals = Arrivals::listen(|data| {
        data.as_string()
            .is_some_and(|text| text.contains("click_to_call"))
    });
    let started = js_sys::Date::now();
    for i in 0..300 {
        post_from_host(&from_host(
            "click_to_call",
            json!({"phone": format!("+1 415 555 {:04}", 1000 + i)}),
        ));
    }
    arrivals.wait_for("the 300 messages", 300).await;
    let seconds = ((js_sys::Date::now() - started) / 1000.0).ceil() as usize;
    assert!(log_has(log, "host message(s): more than 1 per second"));
    let filled = log
        .entries()
        .iter()
        .filter(|e| e.text.contains("filled the dial pad"))
        .count();
    // Some go through (the burst of 10, then one more per second the 300 took to arrive; fills
    // within one tick show as one), the rest are dropped.
    assert!(
        (1..=10 + seconds).contains(&filled),
        "{filled} click-to-calls processed out of 300 in {seconds} s"
    );
    assert!(
        input_value(&root).starts_with("+1 415 555 "),
        "the dial pad shows an accepted number: {:?}",
        input_value(&root)
    );
    let notes = log
        .entries()
        .iter()
        .filter(|e| e.text.contains("more than 1 per second"))
        .count();
    assert!(
        (1..=seconds.max(1)).contains(&notes),
        "one note per second, not one per message: {notes} in {seconds} s"
    );
}

#[wasm_bindgen_test]
async fn api_requests_are_correlated_and_time_out() {
    // A stand-in host that answers api_request for /v1/routing/statuses only.
    let responder = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
        move |event: web_sys::MessageEvent| {
            let Some(raw) = event.data().as_string() else {
                return;
            };
            let Ok(message) = serde_json::from_str::<Value>(&raw) else {
                return;
            };
            if message["type"] == "api_request"
                && message["payload"]["path"] == "/v1/routing/statuses"
            {
                let reply = json!({"protocol": "ccai-adapter", "version": 1, "type": "api_response",
                "reply_to": message["id"], "payload": {"status": 200, "body": {"data": [{"id": "s1"}]}}});
                post_from_host(&reply.to_string());
            }
        },
    );
    window()
        .add_event_listener_with_callback("message", responder.as_ref().unchecked_ref())
        .unwrap();
    let (bridge, log, _mounted) = mount_bridge(host_is_this_window(FloodLimits::default()));
    let bridge = bridge.bridge().unwrap();
    let answer = bridge
        .request("GET", "/v1/routing/statuses", None)
        .await
        .unwrap();
    assert_eq!(
        (answer.status, &answer.body["data"][0]["id"]),
        (200, &json!("s1"))
    );
    let late = bridge.request("GET", "/v1/never-answered", None).await;
    assert_eq!(late, Err(BridgeError::Timeout(300)));
    post_from_host(&json!({"protocol": "ccai-adapter", "version": 1, "type": "api_response", "reply_to": "a-99", "payload": {"status": 200}}).to_string());
    eventually("an unknown answer to be dropped", || {
        log_has(log, "no request is waiting for it")
    })
    .await;
    window()
        .remove_event_listener_with_callback("message", responder.as_ref().unchecked_ref())
        .unwrap();
}

#[wasm_bindgen_test]
async fn outside_a_host_the_adapter_says_so_and_accepts_nothing() {
    // The test page has no parentUrl and is not framed.
    let (root, log, _mounted) = mount_shell(UseHostBridgeOptions::default());
    assert!(text_of(&root, ".notice-standalone").contains("Running outside Kustomer"));
    assert!(log_has(
        log,
        "running standalone: the page has no parentUrl parameter"
    ));
    let arrivals = Arrivals::listen(|data| {
        data.as_string()
            .is_some_and(|text| text.contains("click_to_call"))
    });
    post_from_host(&from_host(
        "click_to_call",
        json!({"phone": "+1 415 555 2671"}),
    ));
    arrivals.wait_for("the click-to-call to arrive", 1).await;
    assert_eq!(input_value(&root), "");
}

/// `window.Kustomer`, built from Rust closures: records what the adapter calls.
struct KustomerStandIn {
    calls: Rc<RefCell<Vec<String>>>,
    /// The arguments of `openCustomerEvent` and `handleTriggerToast`, as JSON text.
    arguments: Rc<RefCell<Vec<String>>>,
    /// What the adapter handed to `on('context', …)`.
    on_context: Rc<RefCell<Option<js_sys::Function>>>,
    _closures: Vec<Closure<dyn FnMut(JsValue, JsValue)>>,
}

impl KustomerStandIn {
    /// The documented SDK only.
    fn install() -> Self {
        Self::install_with(false)
    }

    /// With `seen`, also the calls seen in public cards: `openCustomerEvent` and
    /// `handleTriggerToast`.
    fn install_with(seen: bool) -> Self {
        let calls: Rc<RefCell<Vec<String>>> = Rc::default();
        let arguments: Rc<RefCell<Vec<String>>> = Rc::default();
        let on_context: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
        let sdk = js_sys::Object::new();
        let mut closures = Vec::new();
        let mut method = |name: &'static str, body: Box<dyn FnMut(JsValue, JsValue)>| {
            let calls = Rc::clone(&calls);
            let mut body = body;
            let closure =
                Closure::<dyn FnMut(JsValue, JsValue)>::new(move |a: JsValue, b: JsValue| {
                    calls.borrow_mut().push(name.to_owned());
                    body(a, b);
                });
            js_sys::Reflect::set(&sdk, &JsValue::from_str(name), closure.as_ref()).unwrap();
            closures.push(closure);
        };
        let context = r#"{"user": {"id": "u1", "attributes": {"email": "ada@example.com", "displayName": "Ada"}},
            "customer": {"id": "c1", "attributes": {"displayName": "Grace", "phones": [{"phone": "+44 20 7946 0958"}]}}}"#;
        method(
            "initialize",
            Box::new(move |callback: JsValue, _| {
                let context = js_sys::JSON::parse(context).unwrap();
                callback
                    .unchecked_into::<js_sys::Function>()
                    .call2(&JsValue::NULL, &context, &js_sys::Array::new())
                    .unwrap();
            }),
        );
        let slot = Rc::clone(&on_context);
        method(
            "on",
            Box::new(move |event: JsValue, callback: JsValue| {
                if event.as_string().as_deref() == Some("context") {
                    *slot.borrow_mut() = Some(callback.unchecked_into());
                }
            }),
        );
        method("open", Box::new(|_, _| {}));
        method("resize", Box::new(|_, _| {}));
        method(
            "request",
            Box::new(|options: JsValue, callback: JsValue| {
                let url = js_sys::Reflect::get(&options, &JsValue::from_str("url"))
                    .unwrap()
                    .as_string()
                    .unwrap();
                let callback = callback.unchecked_into::<js_sys::Function>();
                if url.contains("/forbidden") {
                    // Kustomer refused: the callback's first argument is the error.
                    let error =
                        js_sys::JSON::parse(r#"{"status": 403, "message": "forbidden"}"#).unwrap();
                    callback
                        .call2(&JsValue::NULL, &error, &JsValue::NULL)
                        .unwrap();
                } else {
                    let body = js_sys::JSON::parse(&format!(r#"{{"url": {url:?}}}"#)).unwrap();
                    callback
                        .call2(&JsValue::NULL, &JsValue::NULL, &body)
                        .unwrap();
                }
            }),
        );
        if seen {
            for name in ["openCustomerEvent", "handleTriggerToast"] {
                let arguments = Rc::clone(&arguments);
                method(
                    name,
                    Box::new(move |a: JsValue, b: JsValue| {
                        let text = js_sys::JSON::stringify(&js_sys::Array::of2(&a, &b)).unwrap();
                        arguments.borrow_mut().push(text.into());
                    }),
                );
            }
        }
        js_sys::Reflect::set(&window(), &JsValue::from_str("Kustomer"), &sdk).unwrap();
        KustomerStandIn {
            calls,
            arguments,
            on_context,
            _closures: closures,
        }
    }

    fn called(&self, name: &str) -> usize {
        self.calls.borrow().iter().filter(|c| *c == name).count()
    }
}

impl Drop for KustomerStandIn {
    fn drop(&mut self) {
        js_sys::Reflect::delete_property(&window(), &JsValue::from_str("Kustomer")).unwrap();
    }
}

#[wasm_bindgen_test]
async fn the_cards_sdk_transport_works_against_a_stand_in() {
    let sdk = KustomerStandIn::install();
    let (bridge, log, _mounted) = mount_bridge(UseHostBridgeOptions::default());
    assert_eq!(bridge.mode.get_untracked(), BridgeMode::CardsSdk);
    assert_eq!((sdk.called("initialize"), sdk.called("on")), (1, 1));
    let user = bridge
        .state
        .with_untracked(|s| s.user.clone())
        .expect("initialize brought the agent");
    assert_eq!(user.email, "ada@example.com");
    let customer = bridge
        .state
        .with_untracked(|s| s.context.customer.clone())
        .unwrap();
    assert_eq!(
        (customer.name.as_deref(), customer.phones[0].phone.as_str()),
        (Some("Grace"), "+44 20 7946 0958")
    );

    bridge.send(AdapterToHost::Open {});
    bridge.send(AdapterToHost::Resize { height: 48 });
    assert_eq!((sdk.called("open"), sdk.called("resize")), (1, 1));

    let answer = bridge
        .bridge()
        .unwrap()
        .request("GET", "/v1/users/current", None)
        .await
        .unwrap();
    assert_eq!(answer.body["url"], "/v1/users/current");

    bridge.send(AdapterToHost::OpenConversation {
        customer_id: "c1".into(),
        conversation_id: "k1".into(),
    });
    assert!(log_has(
        log,
        "the Cards SDK has no call to open a conversation"
    ));
}

#[wasm_bindgen_test]
async fn screen_pops_and_notices_use_the_sdk_calls_seen_in_public_cards() {
    let sdk = KustomerStandIn::install_with(true);
    let (bridge, log, _mounted) = mount_bridge(UseHostBridgeOptions::default());
    assert_eq!(bridge.mode.get_untracked(), BridgeMode::CardsSdk);
    bridge.send(AdapterToHost::OpenConversation {
        customer_id: "c1".into(),
        conversation_id: "k1".into(),
    });
    for (level, kind) in [
        (NoticeLevel::Info, "info"),
        (NoticeLevel::Warning, "warning"),
        (NoticeLevel::Error, "error"),
    ] {
        bridge.send(AdapterToHost::Notice {
            level,
            text: format!("{kind} text"),
        });
    }
    assert_eq!(
        (
            sdk.called("openCustomerEvent"),
            sdk.called("handleTriggerToast")
        ),
        (1, 3)
    );
    let arguments: Vec<Value> = sdk
        .arguments
        .borrow()
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
    assert_eq!(
        arguments,
        [
            json!(["c1", "k1"]),
            json!([{"type": "info", "message": "info text"}, null]),
            json!([{"type": "warning", "message": "warning text"}, null]),
            json!([{"type": "error", "message": "error text"}, null]),
        ]
    );
    assert!(
        !log_has(log, "could not send to the host"),
        "nothing was refused"
    );
}

#[wasm_bindgen_test]
async fn without_the_seen_calls_screen_pops_and_notices_are_refused() {
    let sdk = KustomerStandIn::install();
    let (bridge, log, _mounted) = mount_bridge(UseHostBridgeOptions::default());
    assert_eq!(bridge.mode.get_untracked(), BridgeMode::CardsSdk);
    bridge.send(AdapterToHost::Notice {
        level: NoticeLevel::Error,
        text: "lost the line".into(),
    });
    assert!(log_has(
        log,
        "could not send to the host: the host cannot do this: the Cards SDK has no notices"
    ));
    bridge.send(AdapterToHost::OpenConversation {
        customer_id: "c1".into(),
        conversation_id: "k1".into(),
    });
    assert!(log_has(
        log,
        "the host cannot do this: the Cards SDK has no call to open a conversation"
    ));
    assert_eq!(sdk.arguments.borrow().len(), 0);
}

#[wasm_bindgen_test]
async fn a_same_origin_frame_that_is_not_the_host_window_is_ignored() {
    let (root, log, _mounted) = mount_shell(host_is_this_window(FloodLimits::default()));
    // A frame of this very origin (srcdoc inherits it): the origin matches, the source does not.
    let message = from_host("click_to_call", json!({"phone": "+1 900 555 0100"}));
    let done = Arrivals::listen(|data| data.as_string().as_deref() == Some("same-origin-done"));
    let frame: web_sys::HtmlIFrameElement = document()
        .create_element("iframe")
        .unwrap()
        .unchecked_into();
    frame.set_srcdoc(&format!(
        "<script>parent.postMessage({}, {:?}); parent.postMessage(\"same-origin-done\", {:?});</script>",
        serde_json::to_string(&message).unwrap(),
        own_origin(),
        own_origin()
    ));
    document().body().unwrap().append_child(&frame).unwrap();
    done.wait_for("the frame's messages", 1).await;
    assert!(
        log_has(
            log,
            &format!("not from the host (last from origin {:?})", own_origin())
        ),
        "refused for its source"
    );
    assert_eq!(input_value(&root), "", "nothing changed");
    frame.remove();
}

#[wasm_bindgen_test]
async fn a_refused_host_message_with_an_id_is_answered_rejected_with_its_code() {
    let (_root, _log, _mounted) = mount_shell(host_is_this_window(FloodLimits::default()));
    // The host here is this window: the adapter's answer comes back to it.
    let rejected = Arrivals::listen(|data| {
        data.as_string()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .is_some_and(|m| {
                m["type"] == "rejected"
                    && m["reply_to"] == "h-7"
                    && m["payload"]["code"] == "unknown_type"
            })
    });
    post_from_host(
        &json!({"protocol": "ccai-adapter", "version": 1, "type": "dial_now", "id": "h-7"})
            .to_string(),
    );
    rejected
        .wait_for("a rejected answer naming the message's id and code", 1)
        .await;
}

#[wasm_bindgen_test]
async fn a_cards_sdk_context_event_changes_the_customer_and_a_refused_request_is_an_error() {
    let sdk = KustomerStandIn::install();
    let (bridge, _log, _mounted) = mount_bridge(UseHostBridgeOptions::default());
    assert_eq!(bridge.mode.get_untracked(), BridgeMode::CardsSdk);
    // Kustomer says the agent moved to another customer.
    let on_context = sdk
        .on_context
        .borrow()
        .clone()
        .expect("the adapter listens to on('context')");
    let context = js_sys::JSON::parse(
        r#"{"customer": {"id": "c2", "attributes": {"displayName": "Arthur", "phones": [{"phone": "+44 20 7946 0000"}]}}}"#,
    )
    .unwrap();
    on_context
        .call2(&JsValue::NULL, &context, &js_sys::Array::new())
        .unwrap();
    eventually("the context's new customer", || {
        bridge.state.with_untracked(|s| {
            s.context
                .customer
                .as_ref()
                .map(|c| (c.name.clone(), c.phones.first().map(|p| p.phone.clone())))
        }) == Some((Some("Arthur".into()), Some("+44 20 7946 0000".into())))
    })
    .await;
    let user = bridge.state.with_untracked(|s| s.user.clone());
    assert_eq!(
        user.map(|u| u.email),
        Some("ada@example.com".into()),
        "a context change keeps the agent"
    );
    // A request Kustomer refuses is an error carrying Kustomer's words, not an answer.
    let refused = bridge
        .bridge()
        .unwrap()
        .request("GET", "/v1/forbidden", None)
        .await;
    match refused {
        Err(BridgeError::Host(words)) => assert!(words.contains("forbidden"), "{words}"),
        other => panic!("a refused request is a host error, not {other:?}"),
    }
}

/// The test page as Kustomer would open the widget: `?parentUrl=…` in its URL and the allowed
/// Kustomer origins in its meta tag (as the gateway writes it); both put back when dropped.
struct OpenedAs {
    url: String,
    meta: web_sys::Element,
}

impl OpenedAs {
    fn new(parent_url: &str, allowed: &str) -> OpenedAs {
        let url = window().location().href().unwrap();
        let query = format!(
            "?parentUrl={}",
            String::from(js_sys::encode_uri_component(parent_url))
        );
        window()
            .history()
            .unwrap()
            .replace_state_with_url(&JsValue::NULL, "", Some(&query))
            .unwrap();
        let meta = document().create_element("meta").unwrap();
        meta.set_attribute("name", "ccai-kustomer-origins").unwrap();
        meta.set_attribute("content", allowed).unwrap();
        document().head().unwrap().append_child(&meta).unwrap();
        OpenedAs { url, meta }
    }
}

impl Drop for OpenedAs {
    fn drop(&mut self) {
        self.meta.remove();
        let _ =
            window()
                .history()
                .unwrap()
                .replace_state_with_url(&JsValue::NULL, "", Some(&self.url));
    }
}

/// The bridge took `origin` as its host: pinned to it, or (the test page is not in a frame)
/// past the origin check and stopped only by having no parent.
fn took_host(mode: &BridgeMode, origin: &str) -> bool {
    match mode {
        BridgeMode::PostMessage { host_origin } => host_origin == origin,
        BridgeMode::Standalone(StandaloneReason::NotFramed) => true,
        _ => false,
    }
}

#[wasm_bindgen_test]
async fn a_host_outside_the_allowed_kustomer_origins_is_refused_with_a_plain_notice() {
    let _opened = OpenedAs::new(
        "https://evil.test/app?u=https://acme.kustomerapp.com",
        "https://*.kustomerapp.com http://127.0.0.1:8720",
    );
    let (root, log, _mounted) = mount_shell(UseHostBridgeOptions::default());
    assert_eq!(
        text_of(&root, ".notice-host-refused"),
        "This page is not an allowed Kustomer address, so the adapter does not talk to it. Ask your administrator to add it to the allowed Kustomer origins."
    );
    assert!(
        root.query_selector(".notice-standalone").unwrap().is_none(),
        "not told as merely outside Kustomer"
    );
    assert!(log_has(
        log,
        "running standalone: the host https://evil.test is not one of the allowed Kustomer origins (https://*.kustomerapp.com http://127.0.0.1:8720)"
    ));
}

#[wasm_bindgen_test]
fn only_the_allowed_kustomer_origins_are_taken_as_the_host() {
    let own = own_origin();
    let cases: Vec<(String, String, Option<String>)> = vec![
        // (parentUrl, the page's allowed origins, the host taken)
        (
            "https://acme.kustomerapp.com/app/customers/1".into(),
            "https://*.kustomerapp.com".into(),
            Some("https://acme.kustomerapp.com".into()),
        ),
        (
            format!("{own}/"),
            format!("https://a.example, {own}"),
            Some(own.clone()),
        ),
        (
            "https://kustomerapp.com.evil.test/".into(),
            "https://*.kustomerapp.com".into(),
            None,
        ),
        (
            "https://kustomerapp.com/".into(),
            "https://*.kustomerapp.com".into(),
            None,
        ),
        (
            "http://acme.kustomerapp.com/".into(),
            "https://*.kustomerapp.com".into(),
            None,
        ),
        (format!("{own}/"), String::new(), None),
        (format!("{own}/"), "*".into(), None),
    ];
    for (parent_url, allowed, want) in cases {
        let _opened = OpenedAs::new(&parent_url, &allowed);
        let (bridge, _log, _mounted) = mount_bridge(UseHostBridgeOptions::default());
        let mode = bridge.mode.get_untracked();
        match want {
            Some(origin) => assert!(
                took_host(&mode, &origin),
                "{parent_url} with {allowed:?}: {mode:?}"
            ),
            None => assert!(
                matches!(
                    mode,
                    BridgeMode::Standalone(StandaloneReason::NotAllowed { .. })
                ),
                "{parent_url} with {allowed:?}: {mode:?}"
            ),
        }
    }
}
