//! Kustomer's Cards SDK (`window.Kustomer`) as a transport: `initialize` and `on('context')`
//! bring the context in, `open`, `resize` and `request` carry the adapter's messages out, and
//! `openCustomerEvent` and `handleTriggerToast` (seen in public cards, not documented) carry
//! screen pops and notices when this SDK has them.
//!
//! The SDK's context shape is Kustomer's (`customer {id, attributes {displayName, phones}}`);
//! [`from_sdk_context`] reads it tolerantly into the protocol's types. How the SDK passes
//! `request` results is not public: the callback is read as `(error, body)`.

use std::cell::RefCell;

use adapter_core::host_protocol::{
    AdapterToHost, ApiResponse, Context, Conversation, Customer, CustomerPhone, Envelope,
    HostToAdapter, Init, KustomerUser, NoticeLevel,
};
use serde_json::Value;
use wasm_bindgen::{closure::Closure, prelude::wasm_bindgen, JsCast, JsValue};

use super::{BridgeError, Inbox};
use crate::debug_log::DebugLog;

#[wasm_bindgen]
extern "C" {
    /// `window.Kustomer`.
    #[derive(Clone, Debug)]
    pub type KustomerSdk;

    #[wasm_bindgen(method, catch)]
    fn initialize(this: &KustomerSdk, callback: &js_sys::Function) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    fn on(this: &KustomerSdk, event: &str, callback: &js_sys::Function) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    fn request(
        this: &KustomerSdk,
        options: &JsValue,
        callback: &js_sys::Function,
    ) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    fn open(this: &KustomerSdk) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch)]
    fn resize(this: &KustomerSdk) -> Result<(), JsValue>;
}

/// `window.Kustomer`, when it is there and has `initialize`.
pub fn detect(window: &web_sys::Window) -> Option<KustomerSdk> {
    let sdk = js_sys::Reflect::get(window, &JsValue::from_str("Kustomer")).ok()?;
    let initialize = js_sys::Reflect::get(&sdk, &JsValue::from_str("initialize")).ok()?;
    (sdk.is_object() && initialize.is_function()).then(|| sdk.unchecked_into())
}

/// A string field of a JSON object.
fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Kustomer's entities carry their fields under `attributes`; flat ones are read too.
fn attribute(entity: &Value, key: &str) -> Option<String> {
    entity
        .get("attributes")
        .and_then(|attributes| text(attributes, key))
        .or_else(|| text(entity, key))
}

fn entity_id(entity: &Value, what: &str) -> Result<String, String> {
    text(entity, "id").ok_or_else(|| format!("the {what} has no string id"))
}

fn display_name(entity: &Value) -> Option<String> {
    attribute(entity, "displayName").or_else(|| attribute(entity, "name"))
}

/// Reads an SDK context (as JSON text): the agent when the context names one with an email,
/// and the customer and conversation. Kustomer's shape is not public; it is read tolerantly.
pub fn from_sdk_context(json: &str) -> Result<(Option<KustomerUser>, Context), String> {
    let sdk = adapter_core::json_text::parse(json)?;
    if !sdk.is_object() {
        return Err("the context is not an object".into());
    }
    let present = |key: &str| sdk.get(key).filter(|v| !v.is_null());
    let user = match present("user") {
        Some(user) => {
            let email = attribute(user, "email").or_else(|| {
                let emails = user.get("attributes").and_then(|a| a.get("emails"));
                emails.and_then(|e| e.get(0)).and_then(|e| text(e, "email"))
            });
            match email {
                Some(email) => Some(KustomerUser {
                    id: entity_id(user, "user")?,
                    email,
                    name: display_name(user),
                }),
                None => None,
            }
        }
        None => None,
    };
    let customer = match present("customer") {
        Some(customer) => {
            let phones = customer
                .get("attributes")
                .and_then(|a| a.get("phones"))
                .and_then(Value::as_array)
                .map(|phones| {
                    phones
                        .iter()
                        .filter_map(|p| {
                            Some(CustomerPhone {
                                phone: text(p, "phone")?,
                                kind: text(p, "type"),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Customer {
                id: entity_id(customer, "customer")?,
                name: display_name(customer),
                phones,
            })
        }
        None => None,
    };
    let conversation = match present("conversation") {
        Some(conversation) => Some(Conversation {
            id: entity_id(conversation, "conversation")?,
            name: display_name(conversation),
        }),
        None => None,
    };
    Ok((
        user,
        Context {
            customer,
            conversation,
        },
    ))
}

/// A callback handed to the SDK: `(error or context, result or roles)`.
type SdkCallback = Closure<dyn FnMut(JsValue, JsValue)>;

pub struct CardsSdkTransport {
    sdk: KustomerSdk,
    inbox: Inbox,
    log: DebugLog,
    /// Callbacks handed to the SDK; kept alive as long as the transport.
    callbacks: RefCell<Vec<SdkCallback>>,
}

impl CardsSdkTransport {
    pub fn start(sdk: KustomerSdk, inbox: Inbox, log: DebugLog) -> Result<Self, JsValue> {
        let transport = CardsSdkTransport {
            sdk,
            inbox,
            log,
            callbacks: RefCell::default(),
        };
        let on_context = |first: bool| {
            let (inbox, log) = (transport.inbox.clone(), transport.log);
            SdkCallback::new(move |context: JsValue, _roles: JsValue| {
                let json = js_sys::JSON::stringify(&context)
                    .map(String::from)
                    .unwrap_or_default();
                match from_sdk_context(&json) {
                    Ok((Some(user), context)) if first => inbox.deliver(Envelope {
                        id: None,
                        reply_to: None,
                        message: HostToAdapter::Init(Init {
                            user,
                            context,
                            lang: None,
                            roles: Vec::new(),
                        }),
                    }),
                    Ok((_, context)) => inbox.deliver(Envelope {
                        id: None,
                        reply_to: None,
                        message: HostToAdapter::ContextChanged(context),
                    }),
                    Err(reason) => log.warn(format!("refused a Cards SDK context: {reason}")),
                }
            })
        };
        let initialize = on_context(true);
        transport
            .sdk
            .initialize(initialize.as_ref().unchecked_ref())?;
        let changed = on_context(false);
        transport
            .sdk
            .on("context", changed.as_ref().unchecked_ref())?;
        transport
            .callbacks
            .borrow_mut()
            .extend([initialize, changed]);
        Ok(transport)
    }

    /// An SDK method that not every SDK has, looked up when it is needed: `openCustomerEvent` and
    /// `handleTriggerToast` are seen in public cards, not documented.
    fn method(&self, name: &str) -> Option<js_sys::Function> {
        let method = js_sys::Reflect::get(&self.sdk, &name.into()).ok()?;
        method.is_function().then(|| method.unchecked_into())
    }

    pub fn post(&self, id: Option<&str>, message: &AdapterToHost) -> Result<(), BridgeError> {
        let sent = match message {
            AdapterToHost::Open {} => self.sdk.open(),
            AdapterToHost::Resize { .. } => self.sdk.resize(),
            AdapterToHost::ApiRequest { method, path, body } => {
                let options = js_sys::Object::new();
                let set = |key: &str, value: &JsValue| {
                    js_sys::Reflect::set(&options, &JsValue::from_str(key), value)
                };
                set("url", &JsValue::from_str(path))
                    .map_err(|e| BridgeError::Send(format!("{e:?}")))?;
                set("method", &JsValue::from_str(method))
                    .map_err(|e| BridgeError::Send(format!("{e:?}")))?;
                if let Some(body) = body {
                    let body = js_sys::JSON::parse(&adapter_core::json_text::to_text(body))
                        .map_err(|e| BridgeError::Send(format!("{e:?}")))?;
                    set("body", &body).map_err(|e| BridgeError::Send(format!("{e:?}")))?;
                }
                let (inbox, reply_to) = (self.inbox.clone(), id.map(str::to_owned));
                let callback = Closure::<dyn FnMut(JsValue, JsValue)>::new(
                    move |error: JsValue, body: JsValue| {
                        let result = if error.is_null() || error.is_undefined() {
                            let json = js_sys::JSON::stringify(&body)
                                .map(String::from)
                                .unwrap_or_default();
                            Ok(ApiResponse {
                                status: 200,
                                body: adapter_core::json_text::parse(&json).unwrap_or_default(),
                            })
                        } else {
                            Err(BridgeError::Host(
                                js_sys::JSON::stringify(&error)
                                    .map(String::from)
                                    .unwrap_or_default(),
                            ))
                        };
                        inbox.resolve(reply_to.as_deref(), result);
                    },
                );
                let sent = self
                    .sdk
                    .request(&options, callback.as_ref().unchecked_ref());
                self.callbacks.borrow_mut().push(callback);
                sent
            }
            AdapterToHost::Ready { .. } => Ok(()),
            AdapterToHost::OpenConversation {
                customer_id,
                conversation_id,
            } => match self.method("openCustomerEvent") {
                Some(open) => open
                    .call2(
                        &self.sdk,
                        &JsValue::from_str(customer_id),
                        &JsValue::from_str(conversation_id),
                    )
                    .map(drop),
                None => {
                    return Err(BridgeError::NotSupported(
                        "the Cards SDK has no call to open a conversation",
                    ))
                }
            },
            AdapterToHost::Notice { level, text } => match self.method("handleTriggerToast") {
                Some(toast) => {
                    // Only "success" is seen in public cards; "info", "warning" and "error" are
                    // assumed. A notice is never a success, so none maps to it.
                    let kind = match level {
                        NoticeLevel::Info => "info",
                        NoticeLevel::Warning => "warning",
                        NoticeLevel::Error => "error",
                    };
                    let options = js_sys::Object::new();
                    let set = |key: &str, value: &str| {
                        js_sys::Reflect::set(&options, &key.into(), &value.into())
                    };
                    set("type", kind)
                        .and_then(|_| set("message", text))
                        .and_then(|_| toast.call1(&self.sdk, &options))
                        .map(drop)
                }
                None => return Err(BridgeError::NotSupported("the Cards SDK has no notices")),
            },
            AdapterToHost::Rejected { .. } => {
                return Err(BridgeError::NotSupported("the Cards SDK has no notices"))
            }
        };
        sent.map_err(|e| BridgeError::Send(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kustomer_shaped_contexts() {
        let json = r#"{
            "type": "customer",
            "user": {"id": "u1", "attributes": {"displayName": "Ada", "email": "ada@example.com"}},
            "customer": {"id": "c1", "attributes": {"displayName": "Grace", "emails": [{"email": "g@example.com"}],
                          "phones": [{"phone": "+1 415 555 2671", "type": "mobile"}, {"phone": "020 7946 0958"}]}},
            "conversation": {"id": "k1", "attributes": {"name": "Billing"}, "unknown": [1, 2]}
        }"#;
        let Ok((user, context)) = from_sdk_context(json) else {
            panic!("the context did not read")
        };
        assert_eq!(
            user,
            Some(KustomerUser {
                id: "u1".into(),
                email: "ada@example.com".into(),
                name: Some("Ada".into())
            })
        );
        let Some(customer) = context.customer else {
            panic!("no customer")
        };
        assert_eq!(
            (customer.id.as_str(), customer.name.as_deref()),
            ("c1", Some("Grace"))
        );
        assert_eq!(customer.phones.len(), 2);
        assert_eq!(customer.phones[0].kind.as_deref(), Some("mobile"));
        assert_eq!(
            context.conversation.and_then(|c| c.name).as_deref(),
            Some("Billing")
        );
    }

    #[test]
    fn a_user_without_email_is_not_an_agent_and_bad_shapes_are_errors() {
        let Ok((user, context)) = from_sdk_context(r#"{"user": {"id": "u1"}}"#) else {
            panic!("the context did not read")
        };
        assert_eq!(user, None);
        assert_eq!(context, Context::default());
        let flat = from_sdk_context(
            r#"{"user": {"id": "u1", "email": "flat@example.com", "name": "Flat"}}"#,
        );
        assert_eq!(
            flat.map(|(user, _)| user.map(|u| u.email)),
            Ok(Some("flat@example.com".into()))
        );
        assert!(from_sdk_context("null").is_err());
        assert!(
            from_sdk_context(r#"{"customer": {"attributes": {}}}"#).is_err(),
            "a customer needs an id"
        );
        assert!(from_sdk_context(r#"{"customer": {"id": 5}}"#).is_err());
    }
}
