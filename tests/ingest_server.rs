//! The `/ingest` endpoint (envelope v1): acks after the sink, nacks for
//! drops, slow/resume, block, requests, and the bad-input suite.

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::*;
use switchboard::config::Config;
use switchboard::ingest::OnFull;
use switchboard::server::{Credentials, FrameProblem, HubService, RunningHub};
use switchboard::sink::CountingSink;

fn start_ingest_hub(config: &Config, credentials: Credentials) -> (RunningHub, Arc<CountingSink>) {
    let sink = CountingSink::new();
    let hub = HubService::builder(config)
        .credentials(credentials)
        .sink(Arc::new(sink.clone()))
        .start()
        .expect("hub starts");
    (hub, sink)
}

fn ingest_url(hub: &RunningHub) -> String {
    format!("ws://{}/ingest", hub.addr())
}

fn data(id: &str, seq: u64) -> String {
    json!({"type": "data", "id": id, "timestamp": 1, "payload": {"seq": seq}}).to_string()
}

async fn next_of(client: &mut Client, kind: &str) -> Value {
    loop {
        let message = client.recv().await;
        if message["type"] == kind {
            return message;
        }
    }
}

#[actix_web::test]
async fn data_is_acked_once_the_sink_accepted_it() {
    let (hub, sink) = start_ingest_hub(&test_config(), Credentials::Open);
    let mut client = Client::connect(ingest_url(&hub)).await;
    for n in 0..100 {
        client.send_text(data(&format!("m{n}"), n)).await;
    }
    let mut acked = Vec::new();
    while acked.len() < 100 {
        let ack = next_of(&mut client, "ack").await;
        acked.push(ack["id"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = (0..100).map(|n| format!("m{n}")).collect();
    assert_eq!(acked, expected, "acked in order");
    assert_eq!(sink.stored(), 100);
}

#[actix_web::test]
async fn requests_to_built_in_methods_are_answered() {
    let (hub, _) = start_ingest_hub(&test_config(), Credentials::Open);
    let mut client = Client::connect(ingest_url(&hub)).await;
    client
        .send_text(
            json!({"type": "request", "id": "r1", "timestamp": 1, "payload": {"method": "status"}})
                .to_string(),
        )
        .await;
    let reply = next_of(&mut client, "reply").await;
    assert_eq!(reply["id"], "r1");
    assert_eq!(reply["payload"]["status"], "ok");
    assert_eq!(reply["payload"]["result"]["queue_capacity"], 1000);
    assert_eq!(reply["payload"]["result"]["connections"], 1);
    client
        .send_text(json!({"type": "request", "id": "r2", "timestamp": 1, "payload": {"method": "backpressure", "params": {"rate_limit": 50}}}).to_string())
        .await;
    let reply = next_of(&mut client, "reply").await;
    assert_eq!(reply["payload"]["result"], json!({"rate_limit": 50}));
    client
        .send_text(
            json!({"type": "request", "id": "r3", "timestamp": 1, "payload": {"method": "launch"}})
                .to_string(),
        )
        .await;
    let reply = next_of(&mut client, "reply").await;
    assert_eq!(reply["payload"]["status"], "error");
    assert_eq!(reply["payload"]["error"]["code"], "not_found");
}

#[actix_web::test]
async fn bad_input_is_answered_or_counted_and_the_socket_lives() {
    let mut config = test_config();
    config.server.max_frame_bytes = 4096;
    let (hub, sink) = start_ingest_hub(&config, Credentials::Open);
    let mut other = Client::connect(ingest_url(&hub)).await;
    let mut client = Client::connect(ingest_url(&hub)).await;
    let stats = hub.service().stats().clone();
    // Not JSON: no id to answer, counted.
    client.send_text("{{{ not json").await;
    // Unknown type with an id: nacked.
    client
        .send_text(json!({"type": "explode", "id": "u1", "payload": {}}).to_string())
        .await;
    let nack = next_of(&mut client, "nack").await;
    assert_eq!(nack["id"], "u1");
    assert_eq!(nack["payload"]["reason"], "unknown_type");
    // Missing id: counted.
    client
        .send_text(json!({"type": "data", "payload": {}}).to_string())
        .await;
    // A reply nobody asked for: counted and dropped.
    client
        .send_text(
            json!({"type": "reply", "id": "nobody", "payload": {"status": "ok"}}).to_string(),
        )
        .await;
    // A type only the hub sends: nacked.
    client
        .send_text(json!({"type": "ack", "id": "a1"}).to_string())
        .await;
    let nack = next_of(&mut client, "nack").await;
    assert_eq!(nack["id"], "a1");
    // Still alive: data goes through.
    client.send_text(data("ok-1", 1)).await;
    assert_eq!(next_of(&mut client, "ack").await["id"], "ok-1");
    assert_eq!(stats.problems(FrameProblem::InvalidJson), 1);
    assert!(
        stats.problems(FrameProblem::Malformed) >= 2,
        "unknown type and missing id"
    );
    // Huge payload: closed with 1009, the other socket unaffected.
    client.send_text(data(&"x".repeat(8192), 2)).await;
    assert_eq!(client.expect_close().await, Some(1009));
    other.send_text(data("other-1", 1)).await;
    assert_eq!(next_of(&mut other, "ack").await["id"], "other-1");
    assert_eq!(sink.stored(), 2);
}

#[actix_web::test]
async fn slow_at_80_percent_then_resumed_at_50_and_drops_nacked() {
    let mut config = test_config();
    config.backpressure.queue_size = 10;
    config.backpressure.on_full = OnFull::DropNewest;
    let (hub, sink) = start_ingest_hub(&config, Credentials::Open);
    sink.pause();
    let mut client = Client::connect(ingest_url(&hub)).await;
    for n in 0..30 {
        client.send_text(data(&format!("m{n}"), n)).await;
    }
    let slow = next_of(&mut client, "slow").await;
    assert_eq!(slow["payload"]["queue_capacity"], 10);
    assert_eq!(slow["payload"]["queue_depth"], 8);
    let mut nacked = 0;
    while nacked < 19 {
        let nack = next_of(&mut client, "nack").await;
        assert_eq!(nack["payload"]["reason"], "queue_full");
        nacked += 1;
    }
    sink.resume();
    let mut acked = 0;
    let mut resumed = 0;
    while acked < 11 || resumed < 1 {
        let message = client.recv().await;
        match message["type"].as_str() {
            Some("ack") => acked += 1,
            Some("slow") => {
                assert_eq!(message["payload"]["resumed"], true);
                resumed += 1;
            }
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    assert_eq!((acked, resumed), (11, 1));
    assert_eq!(hub.service().ingest_stats().dropped(), 19);
}

#[actix_web::test]
async fn block_stops_reading_and_loses_nothing() {
    let mut config = test_config();
    config.backpressure.queue_size = 5;
    config.backpressure.on_full = OnFull::Block;
    let (hub, sink) = start_ingest_hub(&config, Credentials::Open);
    sink.pause();
    let mut client = Client::connect(ingest_url(&hub)).await;
    for n in 0..50 {
        client.send_text(data(&format!("m{n}"), n)).await;
    }
    let status = hub.service().queue_status().await.unwrap();
    assert!(
        status.queue_depth <= 5,
        "the queue never exceeds its size: {status:?}"
    );
    sink.resume();
    let mut acked = 0;
    while acked < 50 {
        let message = client.recv().await;
        assert_ne!(message["type"], "nack", "block drops nothing: {message}");
        if message["type"] == "ack" {
            acked += 1;
        }
    }
    assert_eq!(sink.stored(), 50);
    assert_eq!(hub.service().ingest_stats().dropped(), 0);
}

#[actix_web::test]
async fn ingest_shares_the_pre_upgrade_checks() {
    let (hub, _) = start_ingest_hub(&test_config(), bearer("secret"));
    assert_eq!(refused_status(ingest_url(&hub)).await, 401);
    let mut client = Client::connect(format!("{}?token=secret", ingest_url(&hub))).await;
    client.send_text(data("m1", 1)).await;
    assert_eq!(next_of(&mut client, "ack").await["id"], "m1");
}

/// A data envelope carrying a content envelope of `producer` at `sequence`.
fn sequenced(id: &str, producer: &str, sequence: u64) -> String {
    json!({"type": "data", "id": id, "timestamp": 1, "payload": {
        "channel": "sensors", "aspect": "reading", "sequence": sequence,
        "produced_at": 1, "producer": producer, "payload": {"n": sequence}
    }})
    .to_string()
}

fn two_principals() -> Credentials {
    Credentials::Tokens(vec![
        ("alice".to_owned(), b"alice-token".to_vec()),
        ("bob".to_owned(), b"bob-token".to_vec()),
    ])
}

#[actix_web::test]
async fn sec_2_one_credential_cannot_suppress_another_credentials_producer() {
    let (hub, sink) = start_ingest_hub(&test_config(), two_principals());
    let url = |token: &str| format!("{}?token={token}", ingest_url(&hub));
    let mut bob = Client::connect(url("bob-token")).await;
    // Bob uses Alice's producer name first, then jumps near the top: with
    // one namespace for every sender, Alice's 1..=3 would then be taken for
    // duplicates and never stored.
    for (id, sequence) in [("b1", 1), ("b2", 2), ("b3", 3), ("b-top", u64::MAX - 1)] {
        bob.send_text(sequenced(id, "probe-7", sequence)).await;
        assert_eq!(next_of(&mut bob, "ack").await["id"], id);
    }
    assert_eq!(sink.stored(), 4, "bob's own, in bob's namespace");
    let mut alice = Client::connect(url("alice-token")).await;
    for sequence in 1..=3 {
        let id = format!("a{sequence}");
        alice.send_text(sequenced(&id, "probe-7", sequence)).await;
        assert_eq!(next_of(&mut alice, "ack").await["id"], id.as_str());
    }
    assert_eq!(sink.stored(), 7, "none of alice's was taken for bob's");
    assert_eq!(hub.service().dedup_stats().duplicates, 0);
}

#[actix_web::test]
async fn sec_2_producer_names_are_bounded_in_length() {
    let (hub, sink) = start_ingest_hub(&test_config(), Credentials::Open);
    let mut client = Client::connect(ingest_url(&hub)).await;
    let huge = "p".repeat(16 * 1024);
    client.send_text(sequenced("m1", &huge, 1)).await;
    let refused = next_of(&mut client, "nack").await;
    assert_eq!(
        refused["payload"]["reason"], "producer_too_long",
        "{refused}"
    );
    assert_eq!(sink.stored(), 0);
}
