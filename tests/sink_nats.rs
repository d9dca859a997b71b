//! The NATS sinks against a real `nats-server -js`: order, exactly-once
//! storage through `Nats-Msg-Id`, core publish, and an outage that surfaces as
//! retryable errors. Every wait is bounded; without `nats-server` the tests
//! are skipped loudly (they fail when `CI=true`).

mod support;

use support::nats::{observer, read_stream, stream_count};

use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchboard::sink::{Accepted, ItemKind, Sink, SinkError, SinkItem};
use switchboard::sink::{NatsSink, NatsSinkConfig, StreamConfig};
use tokio::time::timeout;

use support::nats::nats_or_skip;

/// Upper bound of one wait.
const WAIT: Duration = Duration::from_secs(10);
/// The stream the sink creates by default.
const STREAM: &str = "FEDERATED";

fn item(id: &str, seq: usize) -> SinkItem {
    SinkItem {
        store_id: None,
        id: id.to_owned(),
        kind: if seq.is_multiple_of(10) {
            ItemKind::Control
        } else {
            ItemKind::Data
        },
        payload: Bytes::from(json!({"seq": seq, "id": id}).to_string()),
    }
}

fn jetstream_config(url: &str) -> NatsSinkConfig {
    NatsSinkConfig {
        url: url.to_owned(),
        jetstream: Some(StreamConfig::default()),
        ..NatsSinkConfig::default()
    }
}

async fn connect(config: NatsSinkConfig) -> NatsSink {
    timeout(WAIT, NatsSink::connect(config))
        .await
        .expect("the sink connects in time")
        .expect("the sink connects")
}

/// Hands `item` over (the outer future), bounded.
async fn hand(sink: &NatsSink, item: SinkItem) -> Result<Accepted, SinkError> {
    timeout(WAIT, sink.send(item))
        .await
        .expect("send resolves in time")
}

/// Sends every item in order, then awaits all acceptances together.
async fn send_all(sink: &NatsSink, items: impl IntoIterator<Item = SinkItem>) {
    let mut accepted = Vec::new();
    for item in items {
        let id = item.id.clone();
        let handed = hand(sink, item)
            .await
            .unwrap_or_else(|error| panic!("{id} handed over: {error}"));
        accepted.push(handed);
    }
    let outcomes = timeout(WAIT, join_all(accepted))
        .await
        .expect("every acceptance resolves in time");
    for (index, outcome) in outcomes.into_iter().enumerate() {
        outcome.unwrap_or_else(|error| panic!("item #{index} accepted: {error}"));
    }
}

#[tokio::test]
async fn jetstream_sink_stores_in_order_exactly_once() {
    let Some(server) = nats_or_skip("jetstream_sink_stores_in_order_exactly_once") else {
        return;
    };
    let started = Instant::now();
    let sink = connect(jetstream_config(&server.url())).await;
    assert_eq!(sink.name(), "jetstream");
    assert!(sink.is_jetstream());

    let ids: Vec<String> = (0..1000).map(|seq| format!("item-{seq:04}")).collect();
    send_all(&sink, ids.iter().enumerate().map(|(seq, id)| item(id, seq))).await;

    let (_client, js) = observer(&server.url()).await;
    let stored = read_stream(&js, STREAM).await;
    assert_eq!(stored.len(), 1000);
    for (seq, message) in stored.iter().enumerate() {
        assert_eq!(message.sequence, seq as u64 + 1, "{message:?}");
        assert_eq!(message.payload["seq"], json!(seq), "{message:?}");
        assert_eq!(message.id, ids[seq], "{message:?}");
        let subject = if seq.is_multiple_of(10) {
            "federated.control"
        } else {
            "federated.data"
        };
        assert_eq!(message.subject, subject, "{message:?}");
    }

    // The same 100 ids again (as after a lost ack): stored once already.
    send_all(&sink, (450..550).map(|seq| item(&ids[seq], seq))).await;
    assert_eq!(stream_count(&js, STREAM).await, 1000);

    // A new id is still stored.
    send_all(&sink, [item("item-1000", 1000)]).await;
    assert_eq!(stream_count(&js, STREAM).await, 1001);
    eprintln!("jetstream 1,000 + 100 resent: {:?}", started.elapsed());
}

#[tokio::test]
async fn core_nats_sink_publishes() {
    let Some(server) = nats_or_skip("core_nats_sink_publishes") else {
        return;
    };
    let started = Instant::now();
    let (client, _js) = observer(&server.url()).await;
    let mut subscription = timeout(WAIT, client.subscribe("federated.>"))
        .await
        .expect("subscribe in time")
        .expect("subscribed");
    // Our own message coming back proves the server holds the subscription.
    timeout(WAIT, client.publish("federated.warmup", Bytes::new()))
        .await
        .expect("warm-up in time")
        .expect("warm-up published");
    let warmup = timeout(WAIT, subscription.next())
        .await
        .expect("warm-up back in time")
        .expect("subscription open");
    assert_eq!(warmup.subject.as_str(), "federated.warmup");

    let sink = connect(NatsSinkConfig {
        url: server.url(),
        ..NatsSinkConfig::default()
    })
    .await;
    assert_eq!(sink.name(), "nats");
    assert!(!sink.is_jetstream());
    send_all(&sink, (0..100).map(|seq| item(&format!("core-{seq}"), seq))).await;

    for seq in 0..100u64 {
        let message = timeout(WAIT, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("message {seq} in time"))
            .expect("subscription open");
        let payload: Value = serde_json::from_slice(&message.payload).expect("JSON payload");
        assert_eq!(payload["seq"], json!(seq));
        let subject = if seq.is_multiple_of(10) {
            "federated.control"
        } else {
            "federated.data"
        };
        assert_eq!(message.subject.as_str(), subject);
    }
    eprintln!("core 100: {:?}", started.elapsed());
}

/// Sends `item` once; the error if the hand-over or the acceptance failed.
async fn try_once(sink: &NatsSink, item: SinkItem) -> Result<(), SinkError> {
    let accepted = hand(sink, item).await?;
    timeout(WAIT, accepted)
        .await
        .expect("the acceptance resolves in time")
}

#[tokio::test]
async fn jetstream_outage_is_retryable() {
    let Some(mut server) = nats_or_skip("jetstream_outage_is_retryable") else {
        return;
    };
    let ack_timeout = Duration::from_secs(1);
    let sink = connect(NatsSinkConfig {
        ack_timeout,
        ..jetstream_config(&server.url())
    })
    .await;
    let before: Vec<String> = (0..50).map(|seq| format!("before-{seq}")).collect();
    send_all(
        &sink,
        before.iter().enumerate().map(|(seq, id)| item(id, seq)),
    )
    .await;

    server.kill();
    let killed = Instant::now();
    let failure = try_once(&sink, item("during", 50))
        .await
        .expect_err("a send without a server fails");
    let failed_after = killed.elapsed();
    assert!(failure.is_retryable(), "{failure}");
    assert!(
        failed_after <= ack_timeout + Duration::from_secs(2),
        "failed after {failed_after:?}: {failure}"
    );
    eprintln!("outage surfaced after {failed_after:?} as: {failure}");

    // Still down: still failing, still fast.
    for _ in 0..3 {
        let started = Instant::now();
        let error = try_once(&sink, item("during", 50))
            .await
            .expect_err("still down");
        assert!(error.is_retryable(), "{error}");
        assert!(started.elapsed() <= ack_timeout + Duration::from_secs(2));
    }

    server.restart();
    let restarted = Instant::now();
    // Retry the same item as the ingest queue would, until it is accepted.
    let deadline = restarted + Duration::from_secs(20);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match try_once(&sink, item("during", 50)).await {
            Ok(()) => break,
            Err(error) => {
                assert!(error.is_retryable(), "{error}");
                assert!(
                    Instant::now() < deadline,
                    "no recovery within 20 s after the restart: {error}\n{}",
                    server.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eprintln!(
        "recovered {:?} after the restart ({attempts} attempts)",
        restarted.elapsed()
    );
    let after: Vec<String> = (51..101).map(|seq| format!("after-{seq}")).collect();
    send_all(&sink, after.iter().map(|id| item(id, 51))).await;

    // Nothing acked before the kill is lost; nothing is stored twice.
    let (_client, js) = observer(&server.url()).await;
    let stored = read_stream(&js, STREAM).await;
    let ids: Vec<&str> = stored.iter().map(|message| message.id.as_str()).collect();
    let mut expected: Vec<&str> = before.iter().map(String::as_str).collect();
    expected.push("during");
    expected.extend(after.iter().map(String::as_str));
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn connect_to_nothing_fails_retryably_and_in_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let started = Instant::now();
    let error = NatsSink::connect(NatsSinkConfig {
        url: format!("nats://127.0.0.1:{port}"),
        connect_timeout: Duration::from_secs(2),
        ..NatsSinkConfig::default()
    })
    .await
    .err()
    .expect("nothing listens");
    assert!(error.is_retryable(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn misconfigured_stream_is_rejected() {
    let Some(server) = nats_or_skip("misconfigured_stream_is_rejected") else {
        return;
    };
    // No stream and not allowed to create one.
    let error = NatsSink::connect(NatsSinkConfig {
        url: server.url(),
        jetstream: Some(StreamConfig {
            name: STREAM.to_owned(),
            create: false,
        }),
        ..NatsSinkConfig::default()
    })
    .await
    .err()
    .expect("a missing stream is refused");
    assert!(matches!(error, SinkError::Rejected(_)), "{error}");

    // The subjects belong to another stream.
    let _first = connect(NatsSinkConfig {
        jetstream: Some(StreamConfig {
            name: "OTHER".to_owned(),
            create: true,
        }),
        ..jetstream_config(&server.url())
    })
    .await;
    let error = NatsSink::connect(jetstream_config(&server.url()))
        .await
        .err()
        .expect("overlapping subjects are refused");
    assert!(matches!(error, SinkError::Rejected(_)), "{error}");
}

#[tokio::test]
async fn unusable_items_are_rejected_not_retried() {
    let Some(server) = nats_or_skip("unusable_items_are_rejected_not_retried") else {
        return;
    };
    let sink = connect(jetstream_config(&server.url())).await;
    let bad_id = try_once(&sink, item("a\r\nb", 1))
        .await
        .expect_err("an id with CR LF cannot be a header");
    assert!(matches!(bad_id, SinkError::Rejected(_)), "{bad_id}");

    let max = sink.client().server_info().max_payload;
    let huge = SinkItem {
        store_id: None,
        id: "huge".to_owned(),
        kind: ItemKind::Data,
        payload: Bytes::from(vec![b' '; max + 1]),
    };
    let too_big = try_once(&sink, huge).await.expect_err("too big");
    assert!(matches!(too_big, SinkError::Rejected(_)), "{too_big}");

    // The connection survived both.
    try_once(&sink, item("fine", 1))
        .await
        .expect("a good item still goes through");

    // The subjects move to another stream behind the sink's back: the stream
    // refuses the item (Nats-Expected-Stream), which is not retryable.
    let (_client, js) = observer(&server.url()).await;
    timeout(WAIT, js.delete_stream(STREAM))
        .await
        .expect("delete in time")
        .expect("deleted");
    timeout(
        WAIT,
        js.create_stream(jetstream::stream::Config {
            name: "ELSEWHERE".to_owned(),
            subjects: vec!["federated.>".to_owned()],
            ..Default::default()
        }),
    )
    .await
    .expect("create in time")
    .expect("created");
    let refused = try_once(&sink, item("moved", 1))
        .await
        .expect_err("the wrong stream refuses");
    assert!(matches!(refused, SinkError::Rejected(_)), "{refused}");
}
