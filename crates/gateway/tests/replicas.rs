//! Gateway replicas on one PostgreSQL store: what reaches one reaches every agent's stream,
//! whichever replica holds it. Skipped on SQLite (the embedded store has one process).

mod support;

use std::time::Duration;

use adapter_gateway::store::{DatabaseUrl, Engine};
use reqwest::Client;
use serde_json::json;
use support::{ok, open_stream, sign_in, stream_next, StreamNext};

const ADMIN: &str = "grace.hopper@example.com";
const GRACE: i64 = 102;

fn on_postgres(running: &support::Running) -> bool {
    let postgres = DatabaseUrl::for_tests(&running.data_dir).engine() == Engine::Postgres;
    if !postgres {
        eprintln!("skipped on SQLite: replicas share a PostgreSQL store");
    }
    postgres
}

/// The call states the stream shows, until `last`.
async fn call_states(socket: &mut support::Socket, last: &str) -> Vec<(u64, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut states: Vec<(u64, String)> = Vec::new();
    while !states.iter().any(|(_, s)| s == last) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "no call {last} within 30 s; the stream showed {states:?}"
        );
        match stream_next(socket, left).await {
            StreamNext::Message(m) if m["event"]["kind"] == "call" => {
                let seq = m["seq"].as_u64().expect("a numbered event");
                states.push((seq, m["event"]["state"].as_str().unwrap_or("-").to_owned()));
            }
            StreamNext::Message(_) => {}
            StreamNext::Closed(frame) => panic!("the stream closed: {frame:?} after {states:?}"),
        }
    }
    states
}

#[tokio::test]
async fn a_call_whose_webhooks_reach_one_replica_shows_on_a_stream_held_by_another() {
    let mut running = support::Start {
        webhooks: true,
        ..support::Start::new("replicas-call")
    }
    .run(|config| {
        config.admin_emails = vec![ADMIN.into()];
        config.crm.crm_sync = false;
        config.status_refresh_seconds = 0;
    })
    .await;
    if !on_postgres(&running) {
        return;
    }
    // The simulator sends its webhooks to the first replica; the agent is on the second.
    let second = running.start_replica().await;
    let token = sign_in(&second, ADMIN).await;
    let mut socket = open_stream(&second, &token).await;
    let snapshot = match stream_next(&mut socket, Duration::from_secs(10)).await {
        StreamNext::Message(m) if m["type"] == "snapshot" => m,
        other => panic!("the stream starts with a snapshot, not {other:?}"),
    };
    let id = support::answered_call(&running.simulator_url(), GRACE, "+14155552671").await;
    let states = call_states(&mut socket, "ended").await;
    assert!(
        states.iter().any(|(_, s)| s == "connected"),
        "call {id}: {states:?}"
    );
    let seqs: Vec<u64> = states.iter().map(|(seq, _)| *seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > snapshot["seq"].as_u64().unwrap(),
        "in order, after the snapshot: {states:?}"
    );
    // A stream opened on the first replica resumes from the second's numbering.
    let first = running.gateway_url();
    let epoch = snapshot["epoch"].as_u64().expect("the snapshot's epoch");
    let auth = adapter_core::agent_events::StreamAuth::new(
        token.clone(),
        Some((epoch, seqs[0] - 1)),
        None,
    );
    let mut resumed = support::open_stream_with(&first, &auth).await;
    let again = call_states(&mut resumed, "ended").await;
    assert_eq!(
        again, states,
        "the same events, with the same numbers, on either replica"
    );
}

#[tokio::test]
async fn status_inheritance_saved_on_one_replica_applies_on_the_others_at_once() {
    let mut running = support::Start::new("replicas-settings")
        .run(|config| config.admin_emails = vec![ADMIN.into()])
        .await;
    if !on_postgres(&running) {
        return;
    }
    let second = running.start_replica().await;
    let first = running.gateway_url();
    let token = sign_in(&first, ADMIN).await;
    let read_on_second = || {
        Client::new()
            .get(format!("{second}/api/v1/status-inheritance"))
            .bearer_auth(&token)
    };
    let before = ok("the settings on the second replica", read_on_second()).await;
    assert_ne!(
        before["settings"]["rule"], "kustomer_overrides_next",
        "{before}"
    );
    ok(
        "saving on the first replica",
        Client::new()
            .put(format!("{first}/api/v1/status-inheritance"))
            .bearer_auth(&token)
            .json(&json!({"enabled": false, "rule": "kustomer_overrides_next", "mapping": {}, "kustomer_statuses": []})),
    )
    .await;
    support::eventually(
        "the second replica applies the save",
        Duration::from_secs(5),
        || async {
            let now = ok("the settings on the second replica", read_on_second()).await;
            if now["settings"]["rule"] == "kustomer_overrides_next" {
                Ok(())
            } else {
                Err(now.to_string())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn the_status_policy_memory_of_one_replica_is_the_others_at_once() {
    use adapter_core::status_policy::Source;
    use adapter_gateway::{inheritance::Inheritance, store::Store};
    let dir = std::env::temp_dir().join(format!(
        "adapter-test-replicas-memory-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let Some((first, second)) = Store::replicas_for_tests(&dir).await else {
        return;
    };
    let on_first = Inheritance::load(&first.pool()).await.unwrap();
    let on_second = Inheritance::load(&second.pool()).await.unwrap();
    // A change on the first replica reaches the second, and back.
    let changes = [
        (
            &on_first,
            &on_second,
            Source::Kustomer,
            1_700_000_000_000,
            true,
        ),
        (
            &on_second,
            &on_first,
            Source::Adapter,
            1_700_000_005_000,
            false,
        ),
    ];
    for (writer, reader, source, at, as_next) in changes {
        writer.remember(102, source, at, as_next).await;
        let remembered = writer.memory(102);
        assert_ne!(remembered, Default::default());
        support::eventually(
            "the other replica knows",
            Duration::from_secs(5),
            || async {
                let seen = reader.memory(102);
                if seen == remembered {
                    Ok(())
                } else {
                    Err(format!("{seen:?}"))
                }
            },
        )
        .await;
    }
    first.close().await;
    second.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_replica_reading_back_its_own_announcements_never_loses_a_newer_change() {
    use adapter_core::status_policy::Source;
    use adapter_gateway::{inheritance::Inheritance, store::Store};
    let dir = std::env::temp_dir().join(format!(
        "adapter-test-replicas-memory-order-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let Some((store, _other)) = Store::replicas_for_tests(&dir).await else {
        return;
    };
    let inheritance = Inheritance::load(&store.pool()).await.unwrap();
    // Each change is announced; the replica reads the memory again on its own announcement,
    // perhaps while the next change is being written. What it holds is always the latest.
    for round in 0..200_i64 {
        let at = 1_700_000_000_000 + round * 10;
        inheritance.remember(102, Source::Kustomer, at, true).await;
        inheritance
            .remember(102, Source::Adapter, at + 5, false)
            .await;
        let held = inheritance.memory(102);
        assert_eq!(held.next_by, Some((Source::Kustomer, at)), "round {round}");
        assert_eq!(
            held.last_change,
            Some((Source::Adapter, at + 5)),
            "round {round}"
        );
    }
    drop(inheritance);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_directory_read_begun_before_a_change_on_another_replica_does_not_undo_it() {
    // Every directory read takes this long, and the replicas take turns every second: the
    // second replica has a read under way most of the time.
    const LATENCY: Duration = Duration::from_millis(2_500);
    let mut running = support::Start {
        webhooks: true,
        ..support::Start::new("replicas-stale-read")
    }
    .run(|config| {
        config.crm.crm_sync = false;
        config.status_refresh_seconds = 1;
    })
    .await;
    if !on_postgres(&running) {
        return;
    }
    let first = running.gateway_url();
    let _second = running.start_replica().await;
    // Ada (101), Offline in the platform's directory.
    let token = sign_in(&first, "ada.lovelace@example.com").await;
    let mut socket = open_stream(&first, &token).await;
    ok(
        "slowing the tenant down",
        Client::new()
            .post(format!("{}/_sim/faults", running.simulator_url()))
            .json(&json!({"latency_ms": LATENCY.as_millis() as u64})),
    )
    .await;
    tokio::time::sleep(LATENCY + Duration::from_millis(500)).await;
    // The call connects, reported to the first replica: In-call. The directory will not say so
    // (these events do not come from the simulated tenant), so a read begun after this shows
    // Offline again, but no earlier than LATENCY from now.
    let events: Vec<serde_json::Value> = adapter_core::ccai_events::examples::lifecycle()
        .into_iter()
        .skip(2)
        .take(2)
        .collect();
    let response = Client::new()
        .post(format!("{first}/webhooks/ccai/calls"))
        .basic_auth(support::HOOK_USER, Some(support::HOOK_PASSWORD))
        .json(&json!({"count": events.len(), "events": events}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let changed = tokio::time::Instant::now();
    let mut statuses = Vec::new();
    let window = LATENCY - Duration::from_millis(300);
    loop {
        let left = (changed + window).saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        // The outer timeout ends the window (the inner one, longer, would fail the test).
        match tokio::time::timeout(
            left,
            stream_next(&mut socket, left + Duration::from_secs(1)),
        )
        .await
        {
            Ok(StreamNext::Message(m)) if m["event"]["kind"] == "status_changed" => {
                statuses.push(
                    m["event"]["status"]["name"]
                        .as_str()
                        .unwrap_or("-")
                        .to_owned(),
                );
            }
            Ok(StreamNext::Message(_)) => {}
            Ok(StreamNext::Closed(frame)) => panic!("the stream closed: {frame:?}"),
            Err(_) => break,
        }
    }
    eprintln!("statuses shown within {window:?} of the call connecting: {statuses:?}");
    assert!(
        statuses.iter().any(|s| s == "In-call"),
        "the call's status shows: {statuses:?}"
    );
    let after = statuses.iter().skip_while(|s| *s != "In-call").skip(1);
    assert_eq!(
        after.collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "no read begun before the call connected changed the status back"
    );
}

#[tokio::test]
async fn replicas_take_turns_refreshing_the_agents_statuses() {
    const SECONDS: u64 = 6;
    let mut running = support::Start::new("replicas-refresh-turns")
        .run(|config| {
            config.crm.crm_sync = false;
            config.status_refresh_seconds = 1;
        })
        .await;
    if !on_postgres(&running) {
        return;
    }
    let first = running.gateway_url();
    let _second = running.start_replica().await;
    // An agent both replicas know, so that each has someone to refresh.
    sign_in(&first, ADMIN).await;
    let sim = running.simulator_url();
    let directory_reads = || support::directory_reads(&sim);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = directory_reads().await;
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    let reads = directory_reads().await - before;
    // One replica a second (each on its own: two a second). A loaded machine delays ticks,
    // hence the lower bound's slack; the upper one stays well below two a second.
    assert!(
        (SECONDS as usize / 2..=SECONDS as usize + 2).contains(&reads),
        "{reads} directory reads in {SECONDS} s from two replicas refreshing every second"
    );
}
