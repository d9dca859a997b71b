//! Ingest into JetStream end to end: `switchboard publish` through
//! `switchboard serve --sink jetstream`, and a nats-server outage mid-stream.

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use actix::Actor;
use serde_json::{json, Value};
use support::nats::{nats_or_skip, observer, read_stream};
use support::*;
use switchboard::client::{OpenProducer, ProduceError, Switchboard};
use switchboard::config::SinkType;
use switchboard::server::HubService;
use tokio::io::{AsyncBufReadExt, BufReader};

const STREAM: &str = "FEDERATED";

fn seqs(stored: &[support::nats::Stored]) -> Vec<u64> {
    stored
        .iter()
        .map(|s| s.payload["seq"].as_u64().expect("seq"))
        .collect()
}

#[actix_web::test]
async fn publish_10000_through_serve_jetstream_lands_exactly_once() {
    let Some(nats) = nats_or_skip("publish_10000_through_serve_jetstream_lands_exactly_once")
    else {
        return;
    };
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sink",
            "jetstream",
            "--nats-url",
            &nats.url(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let started: Value = serde_json::from_str(&first).unwrap();
    let ingest = format!("ws://{}/ingest", started["listening"].as_str().unwrap());
    let summary = run_publish(&ingest, 10_000).await;
    assert_eq!(summary["acked"], 10_000, "{summary}");
    eprintln!("publish 10,000 x 100 B into JetStream (debug build): {summary}");
    let (_client, js) = observer(&nats.url()).await;
    let stored = read_stream(&js, STREAM).await;
    assert_eq!(stored.len(), 10_000, "every message once");
    assert_eq!(
        seqs(&stored),
        (0..10_000).collect::<Vec<u64>>(),
        "in order, no gap, no duplicate"
    );
}

#[actix_web::test]
async fn nats_killed_mid_stream_loses_nothing_acked() {
    let Some(mut nats) = nats_or_skip("nats_killed_mid_stream_loses_nothing_acked") else {
        return;
    };
    let mut config = test_config();
    config.sink.kind = SinkType::Jetstream;
    config.sink.url = nats.url();
    let sink = switchboard::sink::from_config(&config.sink)
        .await
        .expect("sink connects");
    let hub = HubService::builder(&config).sink(sink).start().unwrap();
    let board = Switchboard::new(1000).start();
    let mut client = support::client::fast_config(&format!("ws://{}/ingest", hub.addr()));
    client.buffer_deadline = Duration::from_secs(20);
    client.heartbeat_interval = Duration::from_secs(2);
    client.buffer_max_frames = 4096;
    let producer = board.send(OpenProducer(client)).await.unwrap().unwrap();

    let total = 3_000u64;
    let sender = {
        let producer = producer.clone();
        actix_web::rt::spawn(async move {
            let mut outcomes = Vec::new();
            for seq in 0..total {
                let producer = producer.clone();
                outcomes.push(actix_web::rt::spawn(async move {
                    (seq, producer.send_data(json!({"seq": seq})).await)
                }));
                if seq % 100 == 99 {
                    tokio::time::sleep(Duration::from_millis(20)).await; // a steady stream
                }
            }
            let mut results = Vec::new();
            for outcome in outcomes {
                results.push(outcome.await.unwrap());
            }
            results
        })
    };
    let stats = hub.service().ingest_stats().clone();
    assert!(eventually(|| stats.delivered.load(std::sync::atomic::Ordering::Relaxed) >= 500).await);
    nats.kill();
    tokio::time::sleep(Duration::from_millis(500)).await; // an outage, not a blip
    nats.restart();
    let results = tokio::time::timeout(Duration::from_secs(60), sender)
        .await
        .unwrap()
        .unwrap();
    let acked: BTreeSet<u64> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(seq, _)| *seq)
        .collect();
    let nacked = results
        .iter()
        .filter(|(_, r)| matches!(r, Err(ProduceError::Nacked { .. })))
        .count();
    let failed = results.len() - acked.len() - nacked;
    eprintln!(
        "outage: {} acked, {nacked} nacked, {failed} failed of {total}",
        acked.len()
    );
    assert_eq!(
        acked.len() + nacked + failed,
        total as usize,
        "every message accounted for"
    );
    let (_client, js) = observer(&nats.url()).await;
    let stored: BTreeSet<u64> = seqs(&read_stream(&js, STREAM).await).into_iter().collect();
    eprintln!(
        "stream holds {} distinct; queue delivered {}, retries {}, dropped {}",
        stored.len(),
        stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
        stats.retries.load(std::sync::atomic::Ordering::Relaxed),
        stats.dropped()
    );
    let lost: Vec<&u64> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acked but not stored: {lost:?}");
}
