//! Who is calling: the caller's name (and company) when Kustomer knows the call's number, else
//! nothing and the call panel shows the number.
//!
//! The customer the agent is looking at in the host (its context) is read first; any other
//! number is looked up once per call through the host, as the agent, with Kustomer's
//! `GET /v1/customers/phone={phone}` (a JSON:API customer; the company is the `included`
//! resource of type `company`, when Kustomer sends one).

use adapter_core::{
    host_protocol::Customer,
    phone::{self, Country},
};
use leptos::prelude::*;
use serde_json::Value;

use crate::{agent::Agent, bridge::UseHostBridgeReturn, effects::effect};

/// The caller as Kustomer knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub company: Option<String>,
}

/// The context's customer, when one of its phones is `number` (E.164).
pub fn from_context(
    customer: Option<&Customer>,
    number: &str,
    country: &Country,
) -> Option<Caller> {
    let customer = customer?;
    let name = customer.name.clone().filter(|n| !n.trim().is_empty())?;
    customer
        .phones
        .iter()
        .any(|entry| phone::normalise(&entry.phone, country).is_ok_and(|n| n.e164 == number))
        .then_some(Caller {
            name,
            company: None,
        })
}

/// The caller in Kustomer's answer to `GET /v1/customers/phone={phone}`.
pub fn from_kustomer(body: &Value) -> Option<Caller> {
    let data = body.get("data")?;
    let data = data
        .as_array()
        .and_then(|list| list.first())
        .unwrap_or(data);
    let name = data["attributes"]["name"].as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    let company_id = data["relationships"]["company"]["data"]["id"].as_str();
    let company = body["included"].as_array().and_then(|included| {
        included
            .iter()
            .find(|item| {
                item["type"] == "company"
                    && company_id.is_none_or(|id| item["id"].as_str() == Some(id))
            })
            .and_then(|item| item["attributes"]["name"].as_str())
            .map(str::to_owned)
    });
    Some(Caller {
        name: name.to_owned(),
        company,
    })
}

/// The caller of the call in progress, once known: from the host's context at once, else
/// looked up through the host (once per number; a late answer for another call is dropped).
pub fn use_caller(
    agent: Agent,
    bridge: UseHostBridgeReturn,
    country: &'static Country,
) -> Signal<Option<Caller>> {
    // The number looked up last, and what was found.
    let known = RwSignal::new(None::<(String, Option<Caller>)>);
    // A derived signal, not a memo (one type fewer in the wasm): the effect runs again at each
    // change of the agent's state, and does nothing when the number is the one already known.
    let number = Signal::derive(move || {
        agent
            .state()
            .with(|s| s.call.as_ref().and_then(|c| c.number.clone()))
    });
    effect(move || {
        let Some(number) = number.get() else {
            return;
        };
        if let Some(caller) = bridge
            .state
            .with(|s| from_context(s.context.customer.as_ref(), &number, country))
        {
            let found = Some((number, Some(caller)));
            if known.with_untracked(|k| *k != found) {
                known.set(found);
            }
            return;
        }
        if known.with_untracked(|k| k.as_ref().is_some_and(|(n, _)| *n == number)) {
            return;
        }
        known.set(Some((number.clone(), None)));
        let Some(host) = bridge.bridge() else { return };
        leptos::task::spawn_local(async move {
            let path = format!(
                "/v1/customers/phone={}",
                String::from(js_sys::encode_uri_component(&number))
            );
            let found = match host.request("GET", &path, None).await {
                Ok(answer) if answer.status == 200 => from_kustomer(&answer.body),
                _ => None,
            };
            if found.is_some() {
                let _ = known.try_update(|k| {
                    if k.as_ref().is_some_and(|(n, _)| *n == number) {
                        *k = Some((number, found));
                    }
                });
            }
        });
    });
    Signal::derive(move || {
        let number = number.get()?;
        known.with(|k| {
            k.as_ref()
                .filter(|(n, _)| *n == number)
                .and_then(|(_, caller)| caller.clone())
        })
    })
}

#[cfg(test)]
mod tests {
    use adapter_core::host_protocol::CustomerPhone;
    use serde_json::json;

    use super::*;

    fn us() -> &'static Country {
        phone::country("US").expect("US")
    }

    #[test]
    fn the_context_customer_is_the_caller_when_a_phone_matches() {
        let customer = Customer {
            id: "c1".into(),
            name: Some("Amélie Poulain".into()),
            phones: vec![CustomerPhone {
                phone: "+33 6 12 34 56 78".into(),
                kind: Some("mobile".into()),
            }],
        };
        assert_eq!(
            from_context(Some(&customer), "+33612345678", us()).map(|c| c.name),
            Some("Amélie Poulain".into())
        );
        assert_eq!(from_context(Some(&customer), "+14155552671", us()), None);
        assert_eq!(from_context(None, "+33612345678", us()), None);
    }

    #[test]
    fn kustomers_customer_by_phone_reads_name_and_company() {
        let body = json!({
            "data": {"type": "customer", "id": "cus-1", "attributes": {"name": "Grace Hopper"},
                "relationships": {"company": {"data": {"type": "company", "id": "co-1"}}}},
            "included": [{"type": "company", "id": "co-1", "attributes": {"name": "US Navy"}}]
        });
        assert_eq!(
            from_kustomer(&body),
            Some(Caller {
                name: "Grace Hopper".into(),
                company: Some("US Navy".into())
            })
        );
        assert_eq!(from_kustomer(&json!({"errors": []})), None);
        assert_eq!(
            from_kustomer(&json!({"data": {"attributes": {"name": " "}}})),
            None
        );
    }
}
