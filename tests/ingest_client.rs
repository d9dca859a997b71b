//! The envelope v1 client (Producer) against the hub's /ingest endpoint:
//! acks, requests, resends after a reconnect, and the publish command.

mod support;

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use serde_json::{json, Value};
use support::client::fast_config;
use support::*;
use switchboard::client::{ConnectEvent, OpenProducer, ProducerHandle, Switchboard};
use switchboard::server::{HubService, RunningHub};
use switchboard::sink::CountingSink;

fn start(config: &switchboard::config::Config, sink: &Arc<CountingSink>) -> RunningHub {
    HubService::builder(config)
        .sink(Arc::new(sink.clone()))
        .start()
        .expect("hub starts")
}

async fn producer(url: String) -> ProducerHandle {
    let board = Switchboard::new(10_000).start();
    let mut config = fast_config(&url);
    config.buffer_deadline = Duration::from_secs(10);
    board.send(OpenProducer(config)).await.unwrap().unwrap()
}

#[actix_web::test]
async fn send_data_returns_once_acked() {
    let sink = CountingSink::new();
    let hub = start(&test_config(), &sink);
    let handle = producer(format!("ws://{}/ingest", hub.addr())).await;
    let sends = (0..500).map(|n| {
        let handle = handle.clone();
        async move { handle.send_data(json!({"seq": n})).await }
    });
    for outcome in futures_util::future::join_all(sends).await {
        outcome.unwrap();
    }
    assert_eq!(sink.stored(), 500);
    let reply = handle.request("status", json!({})).await.unwrap();
    let payload: Value = serde_json::from_str(&reply.encode()).unwrap();
    assert_eq!(payload["payload"]["result"]["queue_capacity"], 1000);
}

#[actix_web::test]
async fn unacked_data_is_resent_after_a_reconnect() {
    let sink = CountingSink::new();
    let first = start(&test_config(), &sink);
    let addr = first.addr();
    let handle = producer(format!("ws://{addr}/ingest")).await;
    let mut events = handle.events();
    handle.send_data(json!({"seq": 0})).await.unwrap();
    sink.pause(); // the next ones are received but not acked
    let waiting: Vec<_> = (1..=20)
        .map(|n| {
            let handle = handle.clone();
            actix_web::rt::spawn(async move { handle.send_data(json!({"seq": n})).await })
        })
        .collect();
    let ingest = first.service().ingest_stats().clone();
    assert!(eventually(|| ingest.delivered.load(std::sync::atomic::Ordering::Relaxed) == 1).await);
    first.kill().await; // gone without acking
    sink.resume();
    let mut config = test_config();
    config.server.listen = addr.to_string();
    let _second = start(&config, &sink);
    support::client::wait_for(&mut events, |e| {
        matches!(e, ConnectEvent::Connected).then_some(())
    })
    .await;
    for sent in waiting {
        sent.await.unwrap().unwrap();
    }
    // At least once: whatever the first hub took before it died may be stored twice.
    assert!(sink.stored() >= 21, "stored {}", sink.stored());
}

#[actix_web::test]
async fn publish_command_sends_and_waits_for_every_ack() {
    let sink = CountingSink::new();
    let hub = start(&test_config(), &sink);
    let summary = run_publish(&format!("ws://{}/ingest", hub.addr()), 2000).await;
    assert_eq!(summary["sent"], 2000);
    assert_eq!(summary["acked"], 2000);
    assert_eq!(summary["nacked"], 0);
    assert!(summary["msgs_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(sink.stored(), 2000);
}

#[actix_web::test]
async fn the_hub_sends_requests_to_a_sender_and_gets_correlated_replies() {
    let sink = CountingSink::new();
    let hub = start(&test_config(), &sink);
    let handle = producer(format!("ws://{}/ingest", hub.addr())).await;
    handle.send_data(json!({"seq": 1})).await.unwrap();
    let service = hub.service().clone();
    assert!(eventually(|| service.ingest_senders().len() == 1).await);
    let session = service.ingest_senders()[0];
    let reply = hub
        .service()
        .request_sender(session, "status", json!({}))
        .await
        .unwrap();
    let reply: Value = serde_json::from_str(&reply.encode()).unwrap();
    assert_eq!(reply["payload"]["status"], "ok");
    assert_eq!(reply["payload"]["result"]["connected"], true);
    let unknown = hub
        .service()
        .request_sender(session, "reboot", json!({}))
        .await
        .unwrap();
    let unknown: Value = serde_json::from_str(&unknown.encode()).unwrap();
    assert_eq!(unknown["payload"]["error"]["code"], "not_found");
    handle.close().await;
    assert!(
        eventually(|| service.ingest_senders().is_empty()).await,
        "forgotten when it leaves"
    );
}
