//! Exactly-once under chaos (SEQ-5, SEQ-6, SEQ-9): a fault proxy
//! cuts every connection every 200–500 ms while a producer publishes 10,000
//! sequenced messages (the sink must hold each exactly once, in order) and
//! while a subscriber follows a recoverable topic across 50 cuts (every
//! broadcast exactly once, or a `Gap` exactly where the history ran out).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::{json, Value};
use support::client::fast_config;
use support::fault_proxy::{Cut, FaultProxy};
use support::nats::{nats_or_skip, observer, read_stream};
use support::*;
use switchboard::client::{ConnectEvent, OpenProducer, ProducerHandle, Switchboard};
use switchboard::config::{Config, SinkType};
use switchboard::ingest::OnFull;
use switchboard::sequence::{FileStore, FlushPolicy, Snapshotter};
use switchboard::server::{Broadcast, Credentials, HubService, RunningHub};
use switchboard::sink::{Accepted, Sink, SinkError, SinkItem};
use tokio::sync::broadcast;

const MESSAGES: u64 = 10_000;
const CHANNEL: &str = "sensors:chaos";
const TOPIC: &str = "room:feed:chaos";
/// Each chaos run must finish well within 2 minutes.
const RUN_LIMIT: Duration = Duration::from_secs(110);

/// Keeps every payload the hub hands over, in order.
#[derive(Default)]
struct RecordingSink {
    items: Mutex<Vec<Value>>,
}

impl Sink for RecordingSink {
    fn name(&self) -> &'static str {
        "recording"
    }

    fn send(&self, item: SinkItem) -> BoxFuture<'static, Result<Accepted, SinkError>> {
        let payload = serde_json::from_slice(&item.payload).unwrap_or(Value::Null);
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(payload);
        let accepted: Accepted = async { Ok(()) }.boxed();
        async move { Ok(accepted) }.boxed()
    }
}

/// Cuts every connection through `proxy` every 200–500 ms until stopped
/// or `limit` cuts were made; answers how many it made.
struct Cutter {
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Cutter {
    fn start(proxy: Arc<FaultProxy>, limit: u64) -> Cutter {
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (thread_stop, thread_cuts) = (stop.clone(), cuts.clone());
        let thread = std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(7);
            while !thread_stop.load(Ordering::SeqCst) && thread_cuts.load(Ordering::SeqCst) < limit
            {
                std::thread::sleep(Duration::from_millis(rng.u64(200..=500)));
                let how = if rng.bool() { Cut::Reset } else { Cut::Fin };
                proxy.cut_all(how);
                thread_cuts.fetch_add(1, Ordering::SeqCst);
            }
        });
        Cutter {
            stop,
            cuts,
            thread: Some(thread),
        }
    }

    fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.cuts()
    }
}

/// A hub (queue policy `block`) whose sink records what it stores.
fn recording_hub() -> (RunningHub, Arc<RecordingSink>) {
    let config = chaos_hub_config();
    let sink = Arc::new(RecordingSink::default());
    let hub = HubService::builder(&config)
        .credentials(Credentials::Open)
        .sink(sink.clone())
        .start()
        .expect("hub starts");
    (hub, sink)
}

fn chaos_hub_config() -> Config {
    let mut config = test_config();
    config.backpressure.on_full = OnFull::Block;
    config
}

async fn open_producer(url: &str, snapshotter: Option<Addr<Snapshotter>>) -> ProducerHandle {
    let board = Switchboard::new(10_000).start();
    let mut config = fast_config(url);
    config.buffer_deadline = Duration::from_secs(60);
    config.buffer_max_frames = 2048;
    config.producer = "probe-1".to_owned();
    config.snapshotter = snapshotter;
    board
        .send(OpenProducer(config))
        .await
        .expect("switchboard alive")
        .expect("opened")
}

/// Publishes `count` readings, waiting for an ack every 500 so that at
/// most about 500 are unacked at a time.
async fn publish_all(producer: &ProducerHandle, range: std::ops::Range<u64>) {
    publish_cutting(producer, range, |_| {}).await;
}

/// [`publish_all`], calling `before(n)` ahead of each publish.
async fn publish_cutting(
    producer: &ProducerHandle,
    range: std::ops::Range<u64>,
    before: impl Fn(u64),
) {
    let last = range.end - 1;
    for n in range {
        before(n);
        let wait = n % 500 == 499 || n == last;
        producer
            .publish(CHANNEL, "reading", json!({ "n": n }), wait)
            .await
            .unwrap_or_else(|error| panic!("publish {n}: {error}"));
    }
}

/// Publishes 0..MESSAGES to `hub` through a proxy that cuts every
/// connection every 200-500 ms, and also at message 250 of every 1000
/// (while about 250 are unacked), so every run sees at least
/// `MESSAGES / 1000` cuts however fast it goes; answers how many cuts it made.
async fn publish_through_cuts(hub: &RunningHub) -> u64 {
    let proxy = Arc::new(FaultProxy::start(hub.addr()));
    let producer = open_producer(&format!("ws://{}/ingest", proxy.addr()), None).await;
    let cutter = Cutter::start(proxy.clone(), u64::MAX);
    let progress_cuts = AtomicU64::new(0);
    let cut_on_progress = |n: u64| {
        if n % 1000 == 250 {
            let made = progress_cuts.fetch_add(1, Ordering::SeqCst);
            proxy.cut_all(if made.is_multiple_of(2) {
                Cut::Reset
            } else {
                Cut::Fin
            });
        }
    };
    let run = publish_cutting(&producer, 0..MESSAGES, cut_on_progress);
    tokio::time::timeout(RUN_LIMIT, run)
        .await
        .expect("published within the limit");
    cutter.stop() + progress_cuts.load(Ordering::SeqCst)
}

/// Checks that the stored payloads are exactly `n` = 0..count, in order,
/// with sequence n + 1 from one producer.
fn assert_exactly_once(stored: &[Value], count: u64) {
    let ns: Vec<u64> = stored
        .iter()
        .map(|item| item["payload"]["n"].as_u64().expect("n"))
        .collect();
    let duplicates = ns.len() as i64 - count as i64;
    assert_eq!(ns.len() as u64, count, "{duplicates} extra or missing");
    assert!(
        ns.iter().copied().eq(0..count),
        "in order, no hole, no duplicate"
    );
    for item in stored {
        let producer = item["producer"].as_str().expect("producer");
        assert!(
            producer.starts_with("probe-1/"),
            "name/incarnation: {producer}"
        );
        assert_eq!(
            item["sequence"].as_u64(),
            item["payload"]["n"].as_u64().map(|n| n + 1)
        );
    }
}

fn report(label: &str, hub: &RunningHub, cuts: u64, started: Instant) {
    let dedup = hub.service().dedup_stats();
    let received = dedup.admitted + dedup.duplicates + dedup.joined_in_flight;
    eprintln!(
        "{label}: {MESSAGES} messages, {cuts} cuts, {received} data frames received, \
         {} resends, {} duplicates acked without storing, {} resends joined their \
         in-flight original, {:.1} s",
        received - dedup.admitted,
        dedup.duplicates,
        dedup.joined_in_flight,
        started.elapsed().as_secs_f64()
    );
}

#[actix_web::test]
async fn seq_9_chaos_10000_sequenced_messages_reach_the_in_process_sink_exactly_once() {
    let started = Instant::now();
    let (hub, sink) = recording_hub();
    let cuts = publish_through_cuts(&hub).await;
    assert!(cuts >= 5, "the run saw cuts ({cuts})");
    let stored = sink.items.lock().expect("sink").clone();
    assert_exactly_once(&stored, MESSAGES);
    report("in_process chaos", &hub, cuts, started);
}

#[actix_web::test]
async fn seq_9_chaos_10000_sequenced_messages_reach_jetstream_exactly_once() {
    let Some(nats) =
        nats_or_skip("seq_9_chaos_10000_sequenced_messages_reach_jetstream_exactly_once")
    else {
        return;
    };
    let started = Instant::now();
    let mut config = chaos_hub_config();
    config.sink.kind = SinkType::Jetstream;
    config.sink.url = nats.url();
    let sink = switchboard::sink::from_config(&config.sink)
        .await
        .expect("sink connects");
    let hub = HubService::builder(&config)
        .sink(sink)
        .start()
        .expect("hub starts");
    let cuts = publish_through_cuts(&hub).await;
    let (_client, js) = observer(&nats.url()).await;
    let stored = read_stream(&js, "FEDERATED").await;
    let ids: Vec<String> = stored.iter().map(|message| message.id.clone()).collect();
    let payloads: Vec<Value> = stored.into_iter().map(|message| message.payload).collect();
    assert_exactly_once(&payloads, MESSAGES);
    let first = &payloads[0];
    let producer = first["producer"].as_str().expect("producer");
    assert_eq!(
        ids[0],
        format!("{producer}:1"),
        "Nats-Msg-Id is producer:sequence"
    );
    report("JetStream chaos", &hub, cuts, started);
}

#[actix_web::test]
async fn seq_9_a_restarted_sender_with_a_file_store_never_reuses_a_sequence() {
    let (hub, sink) = recording_hub();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sender.json");
    let url = format!("ws://{}/ingest", hub.addr());
    for run in 0..3u64 {
        // A fresh snapshotter over the same file: a restarted process.
        let snapshotter =
            Snapshotter::start(Box::new(FileStore::new(&path)), FlushPolicy::Every).expect("loads");
        let producer = open_producer(&url, Some(snapshotter)).await;
        publish_all(&producer, run * 100..run * 100 + 100).await;
        producer.close().await;
    }
    let stored = sink.items.lock().expect("sink").clone();
    assert_exactly_once(&stored, 300);
    let identities: std::collections::BTreeSet<&str> = stored
        .iter()
        .filter_map(|item| item["producer"].as_str())
        .collect();
    assert_eq!(
        identities.len(),
        1,
        "one incarnation across restarts: {identities:?}"
    );
}

#[actix_web::test]
async fn seq_9_one_producer_on_two_channels_keeps_one_sequence() {
    let (hub, sink) = recording_hub();
    let producer = open_producer(&format!("ws://{}/ingest", hub.addr()), None).await;
    let mut sequences = Vec::new();
    for n in 0..10u64 {
        let channel = if n % 2 == 0 { "sensors:a" } else { "sensors:b" };
        let envelope = producer
            .publish(channel, "reading", json!({ "n": n }), true)
            .await
            .expect("acked");
        sequences.push(envelope.sequence);
    }
    assert_eq!(
        sequences,
        (1..=10).collect::<Vec<u64>>(),
        "one series per producer"
    );
    let stored = sink.items.lock().expect("sink").clone();
    assert_exactly_once(&stored, 10);
}

#[actix_web::test]
async fn seq_9_a_producer_restarted_without_a_file_store_is_a_new_incarnation() {
    let (hub, sink) = recording_hub();
    let url = format!("ws://{}/ingest", hub.addr());
    let mut identities = Vec::new();
    for run in 0..2u64 {
        // Same name, state in memory only: sequences start at 1 again.
        let producer = open_producer(&url, None).await;
        let envelope = producer
            .publish(CHANNEL, "reading", json!({ "n": run }), true)
            .await
            .expect("acked");
        assert_eq!(envelope.sequence, 1);
        identities.push(envelope.producer);
        producer.close().await;
    }
    assert_ne!(identities[0], identities[1], "a new incarnation");
    let stored = sink.items.lock().expect("sink").clone();
    assert_eq!(stored.len(), 2, "nothing mistaken for a resend: {stored:?}");
}

/// Follows a recoverable topic while it is broadcast to and cut 50 times.
/// Answers the sequences delivered and the gaps announced.
async fn follow_through_cuts(ring: usize) -> (Vec<u64>, Vec<(u64, u64)>, u64) {
    let mut config = test_config();
    config.history.topics = vec!["room:feed:*".to_owned()];
    config.history.size = ring;
    config.server.max_outbound_frames = 4096;
    let hub = support::start_hub(&config);
    let proxy = Arc::new(FaultProxy::start(hub.addr()));
    let board = Switchboard::new(10_000).start();
    let client = fast_config(&format!("ws://{}/socket/websocket", proxy.addr()));
    let handle = board
        .send(switchboard::client::Open(client))
        .await
        .expect("alive")
        .expect("opened");
    let mut events = handle.events();
    let mut pushes = handle.incoming(TOPIC, None, 200_000);
    handle
        .join_recoverable(TOPIC, json!({}), false)
        .await
        .expect("joined");

    let cutter = Cutter::start(proxy.clone(), 50);
    let mut top = 0u64;
    let deadline = Instant::now() + RUN_LIMIT;
    while cutter.cuts() < 50 {
        assert!(Instant::now() < deadline, "50 cuts within the limit");
        top += 1;
        hub.service()
            .hub()
            .send(Broadcast {
                topic: TOPIC.to_owned(),
                event: "tick".to_owned(),
                payload: json!({ "n": top }),
            })
            .await
            .expect("hub alive");
        tokio::time::sleep(Duration::from_millis(2)).await; // a steady stream
    }
    let cuts = cutter.stop();

    // Everything up to the top arrives (or is announced lost).
    let mut delivered = Vec::new();
    let mut gaps = Vec::new();
    let mut seen_top = false;
    while !seen_top {
        tokio::select! {
            push = tokio::time::timeout(Duration::from_secs(10), pushes.recv()) => {
                let push = push.expect("pushes keep coming").expect("open");
                let sequence = push.payload.to_value()["sequence"].as_u64().expect("sequenced");
                assert_eq!(push.payload.to_value()["payload"]["n"], json!(sequence));
                seen_top = sequence == top;
                delivered.push(sequence);
            }
            event = events.recv() => match event {
                Ok(ConnectEvent::Gap { expected, got, .. }) => gaps.push((expected, got)),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("events closed"),
            },
        }
    }
    // Gap events may trail the last push by a moment.
    while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await
    {
        if let ConnectEvent::Gap { expected, got, .. } = event {
            gaps.push((expected, got));
        }
    }
    (delivered, gaps, cuts)
}

#[actix_web::test]
async fn seq_6_chaos_a_subscriber_gets_every_broadcast_exactly_once_across_50_cuts() {
    let started = Instant::now();
    let (delivered, gaps, cuts) = follow_through_cuts(1000).await;
    let top = *delivered.last().expect("deliveries");
    assert_eq!(cuts, 50);
    assert!(gaps.is_empty(), "history covered every outage: {gaps:?}");
    assert!(
        delivered.iter().copied().eq(1..=top),
        "exactly once, in order"
    );
    eprintln!(
        "subscriber chaos: {top} broadcasts, {cuts} cuts, all delivered once, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[actix_web::test]
async fn seq_5_chaos_with_a_small_ring_every_hole_is_a_gap_exactly_where_history_ran_out() {
    let started = Instant::now();
    let (delivered, gaps, cuts) = follow_through_cuts(4).await;
    let top = *delivered.last().expect("deliveries");
    // Deliveries rise strictly; every hole between two of them is exactly
    // one announced gap, and no gap is announced where nothing is missing.
    let mut holes = BTreeMap::new();
    let mut previous = 0u64;
    for &sequence in &delivered {
        assert!(
            sequence > previous,
            "no duplicate, in order ({previous} then {sequence})"
        );
        if sequence > previous + 1 {
            holes.insert(previous + 1, sequence);
        }
        previous = sequence;
    }
    let announced: BTreeMap<u64, u64> = gaps.iter().copied().collect();
    assert_eq!(announced, holes, "each gap names exactly the hole");
    assert!(!holes.is_empty(), "a ring of 4 runs out during some outage");
    let lost: u64 = holes.iter().map(|(from, to)| to - from).sum();
    eprintln!(
        "subscriber chaos, ring 4: {top} broadcasts, {cuts} cuts, {} delivered once, \
         {} gaps covering {lost}, {:.1} s",
        delivered.len(),
        holes.len(),
        started.elapsed().as_secs_f64()
    );
}
