//! The simulator's Kustomer side over HTTP: the routing resources in the JSON:API shape Kustomer
//! sends, the documented filters and session lifecycle, notes under their conversation, and the
//! one assumed body (the work session's status change) accepted as that and nothing else.

use std::path::PathBuf;

use adapter_simulator::{config::Config, Simulator};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const KEY: &str = "sim-kustomer-key";

/// The simulator's API address (the desktop's routes are on the host's).
async fn start() -> (String, tokio::sync::oneshot::Sender<()>) {
    let (api, _, stop) = start_both().await;
    (api, stop)
}

async fn start_both() -> (String, String, tokio::sync::oneshot::Sender<()>) {
    let config = Config::for_tests(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../host"));
    let simulator = Simulator::start(config).await.unwrap();
    let (api, host) = simulator.local_addrs().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(simulator.serve(async {
        let _ = rx.await;
    }));
    (format!("http://{api}"), format!("http://{host}"), tx)
}

async fn get(api: &str, path: &str) -> (StatusCode, Value) {
    let response = Client::new()
        .get(format!("{api}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn send(api: &str, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
    let response = Client::new()
        .request(method, format!("{api}{path}"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn work_sessions_are_json_api_resources_with_the_user_and_status_as_relationships() {
    let (api, _stop) = start().await;
    let (status, body) = get(&api, "/v1/routing/work-sessions/ws-kus-user-2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = &body["data"];
    assert_eq!(session["type"], "work_session");
    assert_eq!(session["id"], "ws-kus-user-2");
    assert_eq!(
        session["relationships"]["user"]["data"],
        json!({"type": "user", "id": "kus-user-2"})
    );
    assert_eq!(
        session["relationships"]["status"]["data"],
        json!({"type": "status", "id": "rs-available"})
    );
    assert_eq!(session["attributes"]["statusType"], "available");
    assert_eq!(session["attributes"]["routable"], true);
    assert_eq!(session["attributes"]["signedOutAt"], Value::Null);
    assert!(
        session["attributes"].get("user").is_none()
            && session["attributes"].get("status").is_none(),
        "the user and the status are relationships, not attributes: {session}"
    );
    let (status, _) = get(&api, "/v1/routing/work-sessions/ws-nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn user_true_means_the_calling_user_and_another_users_sessions_have_their_own_path() {
    let (api, _stop) = start().await;
    let (_, mine) = get(&api, "/v1/routing/work-sessions?user=true&active=true").await;
    assert_eq!(
        ids(&mine),
        Vec::<&str>::new(),
        "the API key's user has no session"
    );
    let (_, all) = get(&api, "/v1/routing/work-sessions?user=false&active=true").await;
    assert_eq!(
        ids(&all),
        ["ws-kus-user-1", "ws-kus-user-2", "ws-kus-user-3"]
    );
    let (_, available) = get(&api, "/v1/routing/work-sessions?statusType=busy").await;
    assert_eq!(ids(&available), Vec::<&str>::new());
    let (status, _) = get(&api, "/v1/routing/work-sessions?user=kus-user-2").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "user is true or false, not an id"
    );
    let (status, body) = get(&api, "/v1/routing/users/kus-user-2/work-sessions").await;
    assert_eq!(
        (status, ids(&body)),
        (StatusCode::OK, vec!["ws-kus-user-2"])
    );
    let (status, _) = get(&api, "/v1/routing/users/kus-nobody/work-sessions").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_offline_status_ends_the_session_and_the_next_change_in_the_desktop_starts_another() {
    let (api, host, _stop) = start_both().await;
    let put = |body: Value| {
        send(
            &api,
            reqwest::Method::PUT,
            "/v1/routing/work-sessions/ws-kus-user-1",
            body,
        )
    };
    let (status, body) = put(json!({"status": "rs-lunch"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = put(json!({"status": "rs-offline"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, ended) = get(&api, "/v1/routing/work-sessions/ws-kus-user-1").await;
    assert_eq!(ended["data"]["attributes"]["active"], false);
    assert!(ended["data"]["attributes"]["signedOutAt"].is_string());
    let (status, _) = put(json!({"status": "rs-available"})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an ended session is read-only"
    );
    let (_, active) = get(&api, "/v1/routing/work-sessions?active=true").await;
    assert_eq!(ids(&active), ["ws-kus-user-2", "ws-kus-user-3"]);

    let (status, _) = send(
        &host,
        reqwest::Method::PUT,
        "/_sim/desktop/status/kus-user-1",
        json!({"status_id": "rs-available"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, sessions) = get(&api, "/v1/routing/users/kus-user-1/work-sessions").await;
    let listed = ids(&sessions);
    assert_eq!(listed.len(), 2, "{sessions}");
    assert_eq!(listed[1], "ws-kus-user-1", "newest first");
    assert_eq!(sessions["data"][0]["attributes"]["active"], true);
    assert_eq!(
        sessions["data"][0]["relationships"]["status"]["data"]["id"],
        "rs-available"
    );
}

#[tokio::test]
async fn the_status_change_body_is_the_assumed_one_and_nothing_else() {
    let (api, _stop) = start().await;
    let path = "/v1/routing/work-sessions/ws-kus-user-3";
    for body in [
        json!({"statusId": "rs-lunch"}),
        json!({"data": {"relationships": {"status": {"data": {"type": "status", "id": "rs-lunch"}}}}}),
        json!({"status": "rs-nope"}),
    ] {
        let (status, _) = send(&api, reqwest::Method::PUT, path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (status, body) = send(
        &api,
        reqwest::Method::PUT,
        path,
        json!({"status": "rs-lunch"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["attributes"]["statusType"], "unavailable");
}

#[tokio::test]
async fn routing_statuses_are_status_resources() {
    let (api, _stop) = start().await;
    let (status, body) = get(&api, "/v1/routing/statuses").await;
    assert_eq!(status, StatusCode::OK);
    let first = &body["data"][0];
    assert_eq!(first["type"], "status");
    assert_eq!(first["id"], "rs-available");
    assert_eq!(first["attributes"]["name"], "Available");
    assert_eq!(first["attributes"]["statusType"], "available");
}

#[tokio::test]
async fn notes_are_created_under_their_conversation_and_the_old_path_is_gone() {
    let (api, _stop) = start().await;
    let post = |path: &'static str, body: Value| send(&api, reqwest::Method::POST, path, body);
    let (_, customer) = post(
        "/v1/customers",
        json!({"name": "Ada", "phones": [{"phone": "+14155550100"}]}),
    )
    .await;
    let customer = customer["data"]["id"].as_str().unwrap().to_owned();
    let (_, conversation) = send(
        &api,
        reqwest::Method::POST,
        "/v1/conversations",
        json!({"customer": customer}),
    )
    .await;
    let conversation = conversation["data"]["id"].as_str().unwrap().to_owned();
    let notes = format!("/v1/conversations/{conversation}/notes");
    let (status, note) = send(
        &api,
        reqwest::Method::POST,
        &notes,
        json!({"body": "Phone number: +14155550100"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["data"]["type"], "note");
    let (status, _) = send(&api, reqwest::Method::POST, &notes, json!({"body": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a note has a body");
    let (status, _) = send(
        &api,
        reqwest::Method::POST,
        "/v1/conversations/nope/notes",
        json!({"body": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, listed) = get(&api, &notes).await;
    assert_eq!((status, ids(&listed).len()), (StatusCode::OK, 1));
    let (status, _) = post(
        "/v1/notes",
        json!({"conversation": conversation, "body": "x"}),
    )
    .await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
        "no POST /v1/notes: {status}"
    );
}

#[tokio::test]
async fn users_are_found_by_email() {
    let (api, _stop) = start().await;
    let (status, body) = get(&api, "/v1/users?email=Grace.Hopper@example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), ["kus-user-2"]);
    assert_eq!(
        body["data"][0]["attributes"]["email"],
        "grace.hopper@example.com"
    );
    let (_, none) = get(&api, "/v1/users?email=nobody@example.com").await;
    assert_eq!(ids(&none), Vec::<&str>::new());
}

#[tokio::test]
async fn the_desktop_names_the_agent_its_user_signs_in_as() {
    let (_api, host, _stop) = start_both().await;
    let (status, body) = get(&host, "/_sim/desktop/agent/kus-user-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ccai_agent_id"], 101);
    assert_eq!(body["email"], "ada.lovelace@example.com");
    let (_, grace) = get(&host, "/_sim/desktop/agent/kus-user-2").await;
    assert_eq!(grace["ccai_agent_id"], 102);
    let (status, _) = get(&host, "/_sim/desktop/agent/kus-nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
