//! CRM sync end to end: the simulator's CCAI side sends session webhooks to the gateway, the
//! gateway's rules and outbox write to the simulator's Kustomer side, and each test reads the
//! resulting Kustomer state back (which conversation, which customer, fields, notes,
//! attachments, assignee).

use std::time::Duration;

use reqwest::Client;
use serde_json::{json, Value};

mod support;

const ADMIN: &str = "grace.hopper@example.com";
const NUMBER: &str = "+14155552671";

struct Stack {
    gateway: String,
    simulator: String,
    admin_token: String,
    _running: support::Running,
}

async fn stack(name: &str) -> Stack {
    let running = support::Start {
        webhooks: true,
        ..support::Start::new(&format!("crm-{name}"))
    }
    .run(|config| {
        config.admin_emails = vec![ADMIN.into()];
        config.crm.crm_sync = true;
        // No periodic directory read: the tests count the gateway's requests to the tenant.
        config.status_refresh_seconds = 0;
    })
    .await;
    let gateway = running.gateway_url();
    Stack {
        admin_token: support::sign_in(&gateway, ADMIN).await,
        gateway,
        simulator: running.simulator_url(),
        _running: running,
    }
}

impl Stack {
    async fn scenario(&self, body: Value) -> Value {
        let response = Client::new()
            .post(format!("{}/_sim/scenarios", self.simulator))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let session: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{body}: {status} {session}");
        session
    }

    async fn control(&self, id: &Value, action: &str, extra: Value) -> Value {
        let mut body = json!({"agent_id": 102});
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        // A call's controls or a chat's, as the simulator knows the session.
        let state = self.state().await;
        let is_chat = state["ccai"]["sessions"]
            .as_array()
            .and_then(|all| all.iter().find(|s| &s["id"] == id))
            .is_some_and(|s| s["type"] == "chat");
        let what = if is_chat { "chats" } else { "calls" };
        // The tenant's 10 requests per second apply to the test's controls too.
        let response = support::retry_429(|| {
            Client::new()
                .post(format!(
                    "{}/ext/call-control/v1/{what}/{id}/{action}",
                    self.simulator
                ))
                .basic_auth("demo", Some("sim-token"))
                .json(&body)
        })
        .await;
        let status = response.status();
        let session: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{action} {id}: {status} {session}");
        session
    }

    async fn platform(&self, id: &Value, event: &str) {
        let response = Client::new()
            .post(format!("{}/_sim/calls/{id}/{event}", self.simulator))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{event} {id}");
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = Client::new()
            .request(method, format!("{}{path}", self.gateway))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn state(&self) -> Value {
        Client::new()
            .get(format!("{}/_sim/state", self.simulator))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until every webhook was delivered and every CRM operation ran; answers Kustomer's
    /// state.
    async fn settled(&self) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.state().await;
            let delivered = state["webhooks"]
                .as_array()
                .is_some_and(|w| w.iter().all(|d| d["state"] == "delivered"));
            let outbox = self
                .admin(reqwest::Method::GET, "/api/v1/crm/outbox", None)
                .await;
            if delivered && outbox["inbox"] == 0 && outbox["pending"] == 0 {
                assert_eq!(outbox["dead"], 0, "no dead letters: {}", self.dead().await);
                // Read again: the state above was read before the outbox had drained, and
                // may miss its last writes.
                return self.state().await["kustomer"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not settled: {outbox}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn dead(&self) -> Value {
        self.admin(reqwest::Method::GET, "/api/v1/crm/dead-letters", None)
            .await
    }

    /// Answers, ends and wraps up an inbound call of `scenario`; answers its id.
    async fn inbound_call(&self, scenario: Value) -> Value {
        let session = self.scenario(scenario).await;
        let id = session["id"].clone();
        self.control(&id, "answer", json!({})).await;
        self.control(&id, "end", json!({})).await;
        self.platform(&id, "wrap_up_done").await;
        id
    }
}

/// How many of the gateway's requests to Kustomer's API (`/v1/…`) the simulator answered with
/// `status`.
fn kustomer_requests_answered(state: &Value, status: u64) -> usize {
    state["requests"].as_array().map_or(0, |requests| {
        requests
            .iter()
            .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/v1/")))
            .filter(|r| r["status"].as_u64() == Some(status))
            .count()
    })
}

fn list<'a>(kustomer: &'a Value, what: &str) -> Vec<&'a Value> {
    kustomer[what]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn in_conversation<'a>(kustomer: &'a Value, what: &str, conversation: &Value) -> Vec<&'a Value> {
    list(kustomer, what)
        .into_iter()
        .filter(|m| &m["conversation"] == conversation)
        .collect()
}

fn ivr(menu: &str) -> Value {
    json!({"kind": "inbound_call", "number": NUMBER, "recording": true,
        "session": {"origin": "ivr", "selected_menu": {"id": 7, "name": menu}, "lang": "en",
            "queue_duration": 12, "hold_duration": 3}})
}

#[tokio::test]
async fn an_ivr_call_is_written_once_with_customer_fields_note_recording_and_assignee() {
    let stack = stack("ivr").await;
    stack
        .admin(reqwest::Method::POST, "/api/v1/crm/custom-fields", None)
        .await;
    let id = stack.inbound_call(ivr("Billing")).await;
    let k = stack.settled().await;

    let customers = list(&k, "customers");
    assert_eq!(
        customers.len(),
        1,
        "a new phone number creates one customer"
    );
    assert_eq!(customers[0]["phones"], json!([NUMBER]));
    assert_eq!(
        customers[0]["assignedUsers"],
        json!(["kus-user-2"]),
        "a new customer is assigned to the agent"
    );

    let conversations = list(&k, "conversations");
    assert_eq!(conversations.len(), 1);
    let conversation = conversations[0];
    assert_eq!(conversation["customer"], customers[0]["id"]);
    assert_eq!(conversation["status"], "open");
    assert_eq!(
        conversation["assignedUsers"],
        json!(["kus-user-2"]),
        "auto-assigned to the answering agent"
    );
    assert_eq!(
        conversation["custom"],
        json!({"ccaiCallIdStr": id.to_string(), "ccaiLanguageStr": "en", "ccaiMenuSelectionStr": "Billing", "ccaiChannelStr": "voice"}),
        "standard data on creation"
    );

    let messages = in_conversation(&k, "messages", &conversation["id"]);
    assert_eq!(
        messages.len(),
        1,
        "the call's message, written when it ended, with its recording: {messages:?}"
    );
    let call = messages
        .iter()
        .find(|m| m["externalId"] == format!("ccai-call-{id}-message"))
        .unwrap();
    assert_eq!(call["custom"]["ccaiQueueNameStr"], "Billing");
    assert_eq!(call["custom"]["ccaiSessionTypeStr"], "IVR call");
    assert_eq!(call["custom"]["ccaiSessionIdStr"], id.to_string());
    assert_eq!(call["custom"]["ccaiFromPhoneNumberStr"], NUMBER);
    assert_eq!(call["custom"]["ccaiWaitTimeNum"], 12);
    assert_eq!(call["custom"]["ccaiHoldTimeNum"], 3);
    assert!(call["custom"]["ccaiCallDurationNum"].is_number());
    assert_eq!(call["attachments"][0]["name"], format!("call-{id}.wav"));
    let attachments = list(&k, "attachments");
    assert!(
        attachments.iter().all(|a| a["uploaded"] == true),
        "two-step upload done: {attachments:?}"
    );

    let notes = in_conversation(&k, "notes", &conversation["id"]);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["body"], format!("Phone number: {NUMBER}"));

    // Same customer, same menu, same channel, conversation Open: appended.
    let second = stack.inbound_call(ivr("Billing")).await;
    // Another menu: a conversation of its own.
    let third = stack.inbound_call(ivr("Sales")).await;
    let k = stack.settled().await;
    assert_eq!(
        list(&k, "customers").len(),
        1,
        "the customer is looked up, not created again"
    );
    let conversations = list(&k, "conversations");
    assert_eq!(conversations.len(), 2, "{conversations:?}");
    let first_messages = in_conversation(&k, "messages", &conversation["id"]);
    assert!(
        first_messages
            .iter()
            .any(|m| m["externalId"] == format!("ccai-call-{second}-message")),
        "appended: {first_messages:?}; all: {:?}",
        list(&k, "messages")
    );
    assert!(in_conversation(&k, "messages", &conversations[1]["id"])
        .iter()
        .any(|m| m["externalId"] == format!("ccai-call-{third}-message")));
}

/// The gateway's requests to Kustomer's API for calls (`/v1/…`, the agents' routing statuses
/// aside) in the simulator's log, from index `from`.
fn kustomer_call_requests(state: &Value, from: usize) -> Vec<String> {
    state["requests"].as_array().map_or(Vec::new(), |requests| {
        requests
            .iter()
            .skip(from)
            .filter_map(|r| Some(format!("{} {}", r["method"].as_str()?, r["path"].as_str()?)))
            .filter(|r| r.contains(" /v1/") && !r.contains(" /v1/routing/"))
            .collect()
    })
}

/// The budget of Kustomer requests per answered IVR call with its recording and the record
/// fields: the org's per-minute budget divided by it is the calls a minute the org sustains.
#[tokio::test]
async fn an_answered_call_costs_kustomer_six_requests_for_a_new_caller_and_four_for_a_returning_one(
) {
    let stack = stack("cost").await;
    stack
        .admin(reqwest::Method::POST, "/api/v1/crm/custom-fields", None)
        .await;
    // A first call from another number: the agent's Kustomer user is looked up once.
    let mut warm_up = ivr("Billing");
    warm_up["number"] = json!("+14155550100");
    stack.inbound_call(warm_up).await;
    stack.settled().await;
    let mut costs = Vec::new();
    for caller in ["new", "returning"] {
        let from = stack.state().await["requests"]
            .as_array()
            .map_or(0, Vec::len);
        stack.inbound_call(ivr("Billing")).await;
        stack.settled().await;
        costs.push((caller, kustomer_call_requests(&stack.state().await, from)));
    }
    let [(_, new), (_, returning)] = &costs[..] else {
        unreachable!()
    };
    assert!(
        new.len() <= 6,
        "a new caller: {} requests: {new:#?}",
        new.len()
    );
    assert!(
        returning.len() <= 4,
        "a returning caller: {} requests: {returning:#?}",
        returning.len()
    );
    assert!(
        !returning
            .iter()
            .any(|r| r.starts_with("GET /v1/customers/phone=")),
        "the customer of the call minutes ago is not looked up again: {returning:#?}"
    );
}

/// Kustomer refusing a customer created with its assignment (`assignedUsers` is not documented
/// for customers): the customer is created without it, and assigned in a request of its own.
#[tokio::test]
async fn a_customer_refused_with_its_assignment_is_created_then_assigned() {
    let stack = stack("customer-assignment").await;
    let response = Client::new()
        .post(format!("{}/_sim/kustomer/faults", stack.simulator))
        .json(&json!({"client_errors": 1, "method": "POST", "path_ends_with": "/v1/customers"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let from = stack.state().await["requests"]
        .as_array()
        .map_or(0, Vec::len);
    stack.inbound_call(ivr("Billing")).await;
    let k = stack.settled().await;
    let customers = list(&k, "customers");
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["assignedUsers"], json!(["kus-user-2"]));
    let requests = kustomer_call_requests(&stack.state().await, from);
    let creates = requests
        .iter()
        .filter(|r| *r == "POST /v1/customers")
        .count();
    assert_eq!(creates, 2, "refused once, then created: {requests:#?}");
    assert!(
        requests.iter().any(|r| r.starts_with("PUT /v1/customers/")),
        "assigned in a request of its own: {requests:#?}"
    );
}

/// A customer taken from an earlier session (no look-up) that is gone from Kustomer since
/// (merged, deleted) is found again: the call is written, to a customer that exists.
#[tokio::test]
async fn a_reused_customer_gone_from_kustomer_is_looked_up_again() {
    let stack = stack("customer-gone").await;
    stack.inbound_call(ivr("Billing")).await;
    let k = stack.settled().await;
    let first = list(&k, "customers")[0]["id"].as_str().unwrap().to_owned();
    let response = Client::new()
        .delete(format!(
            "{}/_sim/kustomer/customers/{first}",
            stack.simulator
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
    let second = stack.inbound_call(ivr("Billing")).await;
    let k = stack.settled().await;
    let customers = list(&k, "customers");
    assert_eq!(customers.len(), 1, "created anew: {customers:?}");
    assert_ne!(customers[0]["id"], first);
    let conversation = list(&k, "conversations")
        .into_iter()
        .find(|c| c["externalId"] == format!("ccai-call-{second}"))
        .expect("the second call's conversation");
    assert_eq!(conversation["customer"], customers[0]["id"]);
    assert_eq!(
        in_conversation(&k, "messages", &conversation["id"]).len(),
        1,
        "the call's message"
    );
    // The customer is taken again from then on.
    let third = stack.inbound_call(ivr("Billing")).await;
    let k = stack.settled().await;
    assert_eq!(list(&k, "customers").len(), 1);
    assert!(list(&k, "messages")
        .iter()
        .any(|m| m["externalId"] == format!("ccai-call-{third}-message")));
}

#[tokio::test]
async fn custom_fields_fill_only_sessions_after_provisioning() {
    let stack = stack("fields").await;
    let before = stack.inbound_call(ivr("Billing")).await;
    stack.settled().await;
    let provisioned = stack
        .admin(reqwest::Method::POST, "/api/v1/crm/custom-fields", None)
        .await;
    assert_eq!(
        provisioned["record_fields"].as_array().map(Vec::len),
        Some(11)
    );
    let after = stack.inbound_call(ivr("Billing")).await;
    let k = stack.settled().await;
    let message = |id: &Value| {
        list(&k, "messages")
            .into_iter()
            .find(|m| m["externalId"] == format!("ccai-call-{id}-message"))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        message(&before)["custom"],
        json!({}),
        "earlier sessions do not get them"
    );
    assert_eq!(message(&after)["custom"]["ccaiSessionTypeStr"], "IVR call");
    let klasses = &k["klasses"];
    assert!(klasses["customer"]["ccaiCustomUserIdStr"].is_object());
    for field in [
        "ccaiQueueNameStr",
        "ccaiCsatRatingNum",
        "ccaiCsatCommentTxt",
        "ccaiEmailUsingInWebStr",
    ] {
        assert!(klasses["message"][field].is_object(), "{field}");
    }
}

#[tokio::test]
async fn a_voicemail_gets_its_own_conversation_and_is_updated_when_read() {
    let stack = stack("voicemail").await;
    stack.inbound_call(ivr("Billing")).await;
    let voicemail = stack
        .scenario(json!({"kind": "voicemail", "number": NUMBER}))
        .await;
    let k = stack.settled().await;
    let conversations = list(&k, "conversations");
    assert_eq!(
        conversations.len(),
        2,
        "even with an Open conversation of the same customer"
    );
    let vm = conversations
        .iter()
        .find(|c| c["externalId"] == format!("ccai-call-{}", voicemail["id"]))
        .unwrap();
    assert_eq!(vm["custom"]["ccaiVoicemailStatusStr"], "new");
    let messages = in_conversation(&k, "messages", &vm["id"]);
    assert_eq!(messages[0]["attachments"][0]["contentType"], "audio/wav");
    stack
        .scenario(json!({"kind": "voicemail_read", "session_id": voicemail["id"]}))
        .await;
    let k = stack.settled().await;
    let vm = list(&k, "conversations")
        .into_iter()
        .find(|c| c["id"] == vm["id"])
        .cloned()
        .unwrap();
    assert_eq!(vm["custom"]["ccaiVoicemailStatusStr"], "read");
    assert!(in_conversation(&k, "notes", &vm["id"])
        .iter()
        .any(|n| n["body"] == "Voicemail read by grace.hopper@example.com"));
}

#[tokio::test]
async fn an_abandoned_call_is_written_unless_the_admin_turns_it_off() {
    let stack = stack("abandoned").await;
    stack
        .scenario(json!({"kind": "abandoned", "number": NUMBER}))
        .await;
    let k = stack.settled().await;
    assert_eq!(list(&k, "conversations").len(), 1);
    stack
        .admin(
            reqwest::Method::PUT,
            "/api/v1/crm/settings",
            Some(json!({"create_abandoned": false})),
        )
        .await;
    stack
        .scenario(json!({"kind": "abandoned", "number": "+14155550123"}))
        .await;
    let k = stack.settled().await;
    assert_eq!(
        list(&k, "conversations").len(),
        1,
        "the option creates nothing"
    );
    assert_eq!(list(&k, "customers").len(), 1);
}

#[tokio::test]
async fn a_mobile_chat_creates_the_app_user_and_gets_transcript_csat_smart_actions_and_mapped_data()
{
    let stack = stack("chat").await;
    // The Kustomer admin defines the field; the adapter's admin maps SDK data to it.
    let response = Client::new()
        .put(format!("{}/v1/metadata/conversation", stack.simulator))
        .bearer_auth("sim-kustomer-key")
        .json(&json!({"properties": {"orderIdStr": {"displayName": "Order"}}}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    stack
        .admin(
            reqwest::Method::PUT,
            "/api/v1/crm/settings",
            Some(json!({"mapping": [{"sdk_key": "order", "field": "orderIdStr"}]})),
        )
        .await;
    let chat = stack
        .scenario(json!({"kind": "chat", "session": {"origin": "mobile_sdk",
            "end_user": {"identifier": "app-user-9", "email": "jean@example.com", "name": "Jean"},
            "custom_data": {"order": {"label": "Order", "value": "A-17", "type": "string"}}}}))
        .await;
    let id = chat["id"].clone();
    // Created when it comes in, before an agent answers.
    let k = stack.settled().await;
    assert_eq!(list(&k, "conversations").len(), 1);
    let customers = list(&k, "customers");
    assert_eq!(customers[0]["externalId"], "app-user-9");
    assert_eq!(customers[0]["emails"], json!(["jean@example.com"]));

    stack.control(&id, "answer", json!({})).await;
    let files = json!([{"name": "photo.json", "url": format!("{}/healthz", stack.simulator), "content_type": "application/json"}]);
    stack.scenario(json!({"kind": "smart_action", "name": "Request Photos", "result": "1 photo", "files": files})).await;
    stack.scenario(json!({"kind": "smart_action", "name": "Get Verification", "error": "fingerprint access not enabled"})).await;
    stack.control(&id, "end", json!({})).await;
    stack
        .scenario(
            json!({"kind": "transcript", "session_id": id, "text": "Agent: Hello\nCustomer: Hi"}),
        )
        .await;
    stack
        .scenario(json!({"kind": "csat", "rating": 4, "text": "Quick"}))
        .await;
    // The simulator sends its events in batches a few milliseconds later: settled once the
    // last of them (the CSAT comment) is written, or the assertions below say what is missing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let k = loop {
        let k = stack.settled().await;
        let written = list(&k, "notes")
            .iter()
            .any(|n| n["body"] == "CSAT rating: 4/5. Comment: Quick");
        if written || tokio::time::Instant::now() > deadline {
            break k;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let conversation = list(&k, "conversations")[0].clone();
    assert_eq!(
        conversation["custom"]["orderIdStr"], "A-17",
        "mapped custom data"
    );
    assert_eq!(conversation["assignedUsers"], json!(["kus-user-2"]));
    let notes: Vec<String> = in_conversation(&k, "notes", &conversation["id"])
        .iter()
        .map(|n| n["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    for want in [
        "SmartAction Request Photos completed: 1 photo",
        "SmartAction Get Verification failed: fingerprint access not enabled",
        "CSAT rating: 4/5. Comment: Quick",
    ] {
        assert!(notes.iter().any(|n| n == want), "{want}: {notes:?}");
    }
    let transcript = in_conversation(&k, "notes", &conversation["id"])
        .into_iter()
        .find(|n| n["body"] == format!("Chat transcript (session {id})"))
        .cloned()
        .unwrap();
    assert_eq!(
        transcript["attachments"][0]["name"],
        format!("chat-{id}-transcript.txt")
    );
    let shared = in_conversation(&k, "messages", &conversation["id"])
        .into_iter()
        .find(|m| m["attachments"][0]["name"] == "photo.json");
    assert!(shared.is_some(), "shared files attached");
}

#[tokio::test]
async fn transfers_assign_and_call_backs_append_to_the_open_conversation() {
    let stack = stack("callbacks").await;
    let session = stack.scenario(ivr("Billing")).await;
    let id = session["id"].clone();
    stack.control(&id, "answer", json!({})).await;
    let callback = stack.control(&id, "hang_up_and_call_back", json!({})).await;
    let callback_id = callback["id"].clone();
    stack.platform(&callback_id, "connect").await;
    stack
        .control(
            &callback_id,
            "transfer",
            json!({"target": "alan.turing@example.com"}),
        )
        .await;
    stack.platform(&callback_id, "wrap_up_done").await;
    let k = stack.settled().await;
    let conversations = list(&k, "conversations");
    assert_eq!(
        conversations.len(),
        1,
        "the call back is appended: {conversations:?}"
    );
    let messages = in_conversation(&k, "messages", &conversations[0]["id"]);
    assert!(
        messages.iter().any(
            |m| m["externalId"] == format!("ccai-call-{callback_id}-message")
                && m["direction"] == "out"
        ),
        "the call back's message: {messages:?}"
    );
    assert_eq!(
        conversations[0]["assignedUsers"],
        json!(["kus-user-3"]),
        "assigned to the agent the call went to"
    );

    // A short call, then Call back: appended too.
    let short = stack.scenario(ivr("Billing")).await;
    let short_id = short["id"].clone();
    stack.control(&short_id, "answer", json!({})).await;
    stack.control(&short_id, "end", json!({})).await;
    stack.platform(&short_id, "wrap_up_done").await;
    let again = stack.control(&short_id, "call_back", json!({})).await;
    // A call's message is written when the call is over.
    stack.control(&again["id"], "end", json!({})).await;
    let k = stack.settled().await;
    assert_eq!(list(&k, "conversations").len(), 1);
    assert!(list(&k, "messages")
        .iter()
        .any(|m| m["externalId"] == format!("ccai-call-{}-message", again["id"])));

    // The conversation closed in Kustomer: an outbound call starts a new one.
    let conversation_id = list(&k, "conversations")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = Client::new()
        .put(format!(
            "{}/v1/conversations/{conversation_id}",
            stack.simulator
        ))
        .bearer_auth("sim-kustomer-key")
        .json(&json!({"status": "done"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    stack.platform(&again["id"], "wrap_up_done").await;
    let placed = Client::new()
        .post(format!("{}/apps/api/v1/calls", stack.simulator))
        .basic_auth("demo", Some("sim-token"))
        .json(&json!({"call_type": "Voice Outbound (API)", "agent_email": ADMIN, "end_user_number": NUMBER}))
        .send()
        .await
        .unwrap();
    assert!(
        placed.status().is_success(),
        "{}",
        placed.text().await.unwrap_or_default()
    );
    let k = stack.settled().await;
    let conversations = list(&k, "conversations");
    assert_eq!(
        conversations.len(),
        2,
        "latest not Open: a new conversation"
    );
}

#[tokio::test]
async fn a_429_storm_and_server_errors_lose_nothing_and_write_nothing_twice() {
    let stack = stack("storm").await;
    // One-second windows, so that waiting for the reset stays short.
    let response = Client::new()
        .post(format!("{}/_sim/kustomer/limits", stack.simulator))
        .json(&json!({"per_window": 1000, "window_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let response = Client::new()
        .post(format!("{}/_sim/kustomer/faults", stack.simulator))
        .json(&json!({"rate_limited": 20, "server_errors": 6}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            stack
                .inbound_call(
                    json!({"kind": "inbound_call", "number": format!("+1415555{:04}", 3000 + i)}),
                )
                .await,
        );
    }
    let k = stack.settled().await;
    // The gateway's own Kustomer requests met the storm (20 answered 429, 6 answered 500), and
    // lost and doubled nothing (below).
    let state = stack.state().await;
    assert!(
        kustomer_requests_answered(&state, 429) >= 20,
        "the gateway met the storm's 429s"
    );
    assert!(
        kustomer_requests_answered(&state, 500) >= 6,
        "the gateway met the server errors"
    );
    assert_eq!(list(&k, "customers").len(), 5);
    assert_eq!(list(&k, "conversations").len(), 5);
    for id in &ids {
        let count = list(&k, "messages")
            .iter()
            .filter(|m| m["externalId"] == format!("ccai-call-{id}-message"))
            .count();
        assert_eq!(count, 1, "session {id}: one message");
        let notes = list(&k, "notes")
            .iter()
            .filter(|n| n["externalId"] == format!("ccai-call-{id}-phone"))
            .count();
        assert_eq!(notes, 1, "session {id}: one phone note");
    }
}

#[tokio::test]
async fn a_retried_call_message_uses_the_attachment_its_first_attempt_created() {
    let stack = stack("attachment-retry").await;
    let session = stack.scenario(ivr("Billing")).await;
    let id = session["id"].clone();
    stack.control(&id, "answer", json!({})).await;
    stack.settled().await;
    // The call's message (written when it ends, with the recording) fails once, after its
    // attachment was created and uploaded.
    let response = Client::new()
        .post(format!("{}/_sim/kustomer/faults", stack.simulator))
        .json(&json!({"server_errors": 1, "method": "POST", "path_ends_with": "/messages"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    stack.control(&id, "end", json!({})).await;
    stack.platform(&id, "wrap_up_done").await;
    let k = stack.settled().await;
    let state = stack.state().await;
    let failed: Vec<&Value> = state["requests"]
        .as_array()
        .expect("the simulator's request log")
        .iter()
        .filter(|r| r["status"] == 500)
        .collect();
    assert!(
        failed.len() == 1
            && failed[0]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/messages")),
        "the gateway's call message failed once: {failed:?}"
    );
    let attachments = list(&k, "attachments");
    assert_eq!(
        attachments.len(),
        1,
        "one attachment, not one per attempt: {attachments:?}"
    );
    let recording = list(&k, "messages")
        .into_iter()
        .find(|m| m["externalId"] == format!("ccai-call-{id}-message"))
        .cloned()
        .unwrap();
    assert_eq!(recording["attachments"][0]["_id"], attachments[0]["id"]);
    assert_eq!(attachments[0]["uploaded"], true);
}

/// The gateway's requests to the CCAI Platform since `from` in the simulator's log (the test's
/// own controls excluded): Manager API reads of sessions, directory and status reads.
fn ccai_reads(state: &Value, from: usize) -> Vec<String> {
    state["requests"]
        .as_array()
        .map(|r| r[from.min(r.len())..].to_vec())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["path"].as_str())
        .filter(|p| p.starts_with("/manager/api/v1/") || p.starts_with("/apps/api/v1/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn an_answered_call_costs_the_tenant_three_session_reads_and_one_directory_read() {
    let stack = stack("ccai-cost").await;
    // Signed in and settled: the directory and statuses are already read.
    let before = stack.state().await["requests"]
        .as_array()
        .map_or(0, Vec::len);
    let session = stack.scenario(ivr("Billing")).await;
    let id = session["id"].clone();
    // As on a real line, each step is planned before the next comes (a call lasts minutes).
    for event in ["answer", "customer_hang_up", "wrap_up_done"] {
        stack.platform(&id, event).await;
        stack.settled().await;
    }
    // The final event's directory read comes after the CRM has settled: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let reads = loop {
        let reads = ccai_reads(&stack.state().await, before);
        if reads
            .iter()
            .any(|p| p.starts_with("/manager/api/v1/agents"))
        {
            break reads;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no directory read after the final event: {reads:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let session_reads = reads
        .iter()
        .filter(|p| p.starts_with(&format!("/manager/api/v1/calls/{id}")))
        .count();
    eprintln!("CCAI requests for one answered call: {reads:?}");
    // Assigned, ended and final each read the call (events planned together share one read).
    assert_eq!(session_reads, 3, "session reads: {reads:?}");
    let directory = reads
        .iter()
        .filter(|p| p.starts_with("/manager/api/v1/agents"))
        .count();
    assert_eq!(
        directory, 1,
        "one directory read after the final event: {reads:?}"
    );
    // Nothing else but the tenant's statuses, cached for minutes (read here for the first time).
    let other: Vec<&String> = reads
        .iter()
        .filter(|p| {
            !p.starts_with(&format!("/manager/api/v1/calls/{id}"))
                && !p.starts_with("/manager/api/v1/agents")
        })
        .collect();
    assert!(
        other.len() <= 1
            && other
                .iter()
                .all(|p| p.starts_with("/manager/api/v1/user_statuses")),
        "{reads:?}"
    );
}

#[tokio::test]
async fn a_session_the_manager_api_cannot_describe_waits_with_its_reason_and_blocks_no_other() {
    let stack = stack("manager-404").await;
    // An answered call the platform's Manager API does not know (404): documented events for a
    // call id the simulator never made.
    let events: Vec<Value> = adapter_core::ccai_events::examples::lifecycle()
        .into_iter()
        .take(3)
        .enumerate()
        .map(|(i, mut e)| {
            e["event_id"] = json!(format!("0badca11-0000-4000-8000-{i:012x}"));
            e["item"]["call_id"] = json!(987654);
            e
        })
        .collect();
    let response = Client::new()
        .post(format!("{}/webhooks/ccai/calls", stack.gateway))
        .basic_auth(support::HOOK_USER, Some(support::HOOK_PASSWORD))
        .json(&json!({"count": events.len(), "events": events}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let waiting = loop {
        let outbox = stack
            .admin(reqwest::Method::GET, "/api/v1/crm/outbox", None)
            .await;
        if let Some(first) = outbox["waiting"].as_array().and_then(|w| w.first()) {
            break first.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the event did not wait with a reason: {outbox}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = waiting["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no call 987654 (not found)"),
        "the admin sees why: {waiting}"
    );
    // Another call is written all the same.
    stack.inbound_call(ivr("Billing")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let k = stack.state().await["kustomer"].clone();
        if list(&k, "conversations").len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other call was blocked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outbox = stack
        .admin(reqwest::Method::GET, "/api/v1/crm/outbox", None)
        .await;
    assert!(
        outbox["inbox"].as_i64().unwrap_or(0) >= 1,
        "kept, not dropped: {outbox}"
    );
}
