//! Resume from sequence on recoverable topics, end to end (SEQ-1..SEQ-8):
//! a hub with history, supervised clients behind a fault proxy, positions
//! kept by a file-backed snapshotter.

mod support;

use std::time::Duration;

use actix::Addr;
use serde_json::{json, Value};
use support::client::*;
use support::fault_proxy::{Cut, FaultProxy};
use support::*;
use switchboard::client::{ConnectEvent, Incoming, PhoenixHandle, PushError, Switchboard};
use switchboard::config::Config;
use switchboard::sequence::{FileStore, Flush, FlushPolicy, SnapshotStore, Snapshotter};
use switchboard::server::{Broadcast, RunningHub};
use tokio::sync::mpsc;

const TOPIC: &str = "room:feed:1";

fn history_config(size: usize) -> Config {
    let mut config = test_config();
    config.history.topics = vec!["room:feed:*".to_owned()];
    config.history.size = size;
    config
}

async fn broadcast(hub: &RunningHub, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        let sent = hub
            .service()
            .hub()
            .send(Broadcast {
                topic: TOPIC.to_owned(),
                event: "news".to_owned(),
                payload: json!({ "n": n }),
            })
            .await
            .expect("hub alive");
        let _ = sent;
    }
}

/// The sequences of the next `count` pushes, with their payload's `n`.
async fn next_sequences(pushes: &mut mpsc::Receiver<Incoming>, count: usize) -> Vec<u64> {
    let mut sequences = Vec::new();
    while sequences.len() < count {
        let push = tokio::time::timeout(WAIT, pushes.recv())
            .await
            .expect("a push in time")
            .expect("pushes open");
        let sequence = push.payload.to_value()["sequence"]
            .as_u64()
            .expect("sequenced");
        assert_eq!(
            push.payload.to_value()["payload"]["n"],
            json!(sequence),
            "payload in step"
        );
        sequences.push(sequence);
    }
    sequences
}

/// Nothing more arrives within a short quiet period.
async fn assert_quiet(pushes: &mut mpsc::Receiver<Incoming>) {
    let extra = tokio::time::timeout(Duration::from_millis(300), pushes.recv()).await;
    assert!(extra.is_err(), "unexpected push: {extra:?}");
}

struct Subscriber {
    handle: PhoenixHandle,
    pushes: mpsc::Receiver<Incoming>,
    events: tokio::sync::broadcast::Receiver<ConnectEvent>,
}

async fn subscriber(
    board: &Addr<Switchboard>,
    url: &str,
    snapshotter: Addr<Snapshotter>,
    strict: bool,
) -> (Subscriber, Value) {
    let mut config = fast_config(url);
    config.snapshotter = Some(snapshotter);
    let handle = open(board, config).await;
    let events = handle.events();
    let pushes = handle.incoming(TOPIC, None, 10_000);
    let reply = handle
        .join_recoverable(TOPIC, json!({}), strict)
        .await
        .expect("joined");
    let subscriber = Subscriber {
        handle,
        pushes,
        events,
    };
    (subscriber, reply.response)
}

fn proxied_url(proxy: &FaultProxy) -> String {
    format!("ws://{}/socket/websocket", proxy.addr())
}

/// Cuts the client off, runs `while_down`, lets it back in.
async fn while_cut_off<F: std::future::Future<Output = ()>>(proxy: &FaultProxy, while_down: F) {
    proxy.refuse(true);
    proxy.cut_all(Cut::Reset);
    while_down.await;
    proxy.refuse(false);
}

async fn rejoined(events: &mut tokio::sync::broadcast::Receiver<ConnectEvent>) -> Value {
    wait_for(events, |event| match event {
        ConnectEvent::Rejoined { reply, .. } => Some(reply.clone()),
        _ => None,
    })
    .await
}

#[actix_rt::test]
async fn seq_1_broadcasts_on_a_recoverable_topic_carry_a_sequence_rising_by_one_in_one_epoch() {
    let hub = start_hub(&history_config(16));
    let mut client = Client::to(&hub).await;
    let reply = client.join(TOPIC, "1").await;
    let response = &reply[4]["response"];
    assert_eq!(response["sequence"], json!(0));
    let epoch = response["epoch"].as_str().expect("an epoch").to_owned();
    broadcast(&hub, 1..=5).await;
    for expected in 1..=5u64 {
        let push = client.recv().await;
        assert_eq!(push[3], json!("news"));
        let envelope = &push[4];
        assert_eq!(envelope["sequence"], json!(expected));
        assert_eq!(envelope["epoch"], json!(epoch));
        assert_eq!(envelope["channel"], json!(TOPIC));
        assert_eq!(envelope["aspect"], json!("news"));
        assert_eq!(envelope["payload"], json!({ "n": expected }));
    }
    // A room that is not recoverable is left untouched.
    client.join("room:plain", "2").await;
    hub.service()
        .hub()
        .send(Broadcast {
            topic: "room:plain".into(),
            event: "news".into(),
            payload: json!({"n": 1}),
        })
        .await
        .expect("hub alive");
    assert_eq!(client.recv().await[4], json!({"n": 1}));
}

#[actix_rt::test]
async fn seq_2_and_seq_3_positions_are_stored_and_every_rejoin_resumes_from_them() {
    let hub = start_hub(&history_config(64));
    let proxy = FaultProxy::start(hub.addr());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("positions.json");
    let store = || Box::new(FileStore::new(&path));
    let snapshotter = Snapshotter::start(store(), FlushPolicy::Interval(Duration::from_millis(20)))
        .expect("loads");
    let board = switchboard();
    let (mut sub, reply) =
        subscriber(&board, &proxied_url(&proxy), snapshotter.clone(), false).await;
    assert_eq!(
        reply["recovered"],
        json!(false),
        "a first join has nothing to recover"
    );
    broadcast(&hub, 1..=5).await;
    assert_eq!(
        next_sequences(&mut sub.pushes, 5).await,
        vec![1, 2, 3, 4, 5]
    );

    // Three outages, each with broadcasts the client misses while away.
    for round in 0..3u64 {
        let first = 6 + round * 5;
        while_cut_off(&proxy, broadcast(&hub, first..=first + 4)).await;
        let reply = rejoined(&mut sub.events).await;
        assert_eq!(reply["recovered"], json!(true), "round {round}: {reply}");
        let expected: Vec<u64> = (first..=first + 4).collect();
        assert_eq!(next_sequences(&mut sub.pushes, 5).await, expected);
    }
    assert_quiet(&mut sub.pushes).await;

    // The position is durable, with its epoch.
    snapshotter
        .send(Flush)
        .await
        .expect("alive")
        .expect("flushed");
    let stored = FileStore::new(&path)
        .load()
        .expect("parses")
        .expect("saved");
    let position = &stored.channels[TOPIC];
    assert_eq!(position.delivered, 20);
    assert_eq!(
        Some(reply["epoch"].clone()),
        position.epoch.clone().map(Value::from)
    );
    sub.handle.close().await;

    // A new process (a new switchboard and snapshotter over the same file)
    // resumes from there: it gets only what it missed.
    broadcast(&hub, 21..=23).await;
    let restarted = Snapshotter::start(store(), FlushPolicy::Every).expect("loads");
    let board = switchboard();
    let (mut again, reply) = subscriber(&board, &proxied_url(&proxy), restarted, false).await;
    assert_eq!(reply["recovered"], json!(true), "{reply}");
    assert_eq!(next_sequences(&mut again.pushes, 3).await, vec![21, 22, 23]);
    assert_quiet(&mut again.pushes).await;
}

#[actix_rt::test]
async fn seq_4_a_new_epoch_is_never_stitched_to_the_old_one() {
    let config = history_config(64);
    let hub = start_hub(&config);
    let addr = hub.addr();
    let board = switchboard();
    let url = format!("ws://{addr}/socket/websocket");
    let (mut sub, _) = subscriber(&board, &url, Snapshotter::in_memory(), false).await;
    broadcast(&hub, 1..=3).await;
    assert_eq!(next_sequences(&mut sub.pushes, 3).await, vec![1, 2, 3]);

    // The hub restarts on the same port: a new epoch, history gone.
    hub.kill().await;
    let mut same_port = config.clone();
    same_port.server.listen = addr.to_string();
    let hub = start_hub(&same_port);
    // Rejoined, then the gap, then messages of the new epoch.
    let reply = rejoined(&mut sub.events).await;
    assert_eq!(reply["recovered"], json!(false));
    let gap = wait_for(&mut sub.events, |event| match event {
        ConnectEvent::Gap { expected, got, .. } => Some((*expected, *got)),
        _ => None,
    })
    .await;
    assert_eq!(gap, (4, 1), "old position 3, the new epoch starts at 1");
    broadcast(&hub, 1..=2).await;
    assert_eq!(next_sequences(&mut sub.pushes, 2).await, vec![1, 2]);
}

#[actix_rt::test]
async fn seq_5_truncated_history_is_not_recovered_and_the_gap_is_where_history_ran_out() {
    let hub = start_hub(&history_config(3));
    let proxy = FaultProxy::start(hub.addr());
    let board = switchboard();
    let (mut sub, _) = subscriber(
        &board,
        &proxied_url(&proxy),
        Snapshotter::in_memory(),
        false,
    )
    .await;
    broadcast(&hub, 1..=2).await;
    assert_eq!(next_sequences(&mut sub.pushes, 2).await, vec![1, 2]);
    // 3..=10 are broadcast while away; the ring keeps only 8, 9, 10.
    while_cut_off(&proxy, broadcast(&hub, 3..=10)).await;
    let gap = wait_for(&mut sub.events, |event| match event {
        ConnectEvent::Gap { expected, got, .. } => Some((*expected, *got)),
        _ => None,
    })
    .await;
    assert_eq!(gap, (3, 8));
    assert_eq!(next_sequences(&mut sub.pushes, 3).await, vec![8, 9, 10]);
    broadcast(&hub, 11..=11).await;
    assert_eq!(next_sequences(&mut sub.pushes, 1).await, vec![11]);
    assert_quiet(&mut sub.pushes).await;
}

#[actix_rt::test]
async fn seq_7_a_strict_subscription_refuses_to_start_unrecovered() {
    let hub = start_hub(&history_config(3));
    let proxy = FaultProxy::start(hub.addr());
    let board = switchboard();
    let (mut sub, _) =
        subscriber(&board, &proxied_url(&proxy), Snapshotter::in_memory(), true).await;
    broadcast(&hub, 1..=2).await;
    assert_eq!(next_sequences(&mut sub.pushes, 2).await, vec![1, 2]);
    while_cut_off(&proxy, broadcast(&hub, 3..=10)).await;
    let refusal = wait_for(&mut sub.events, |event| match event {
        ConnectEvent::Unrecovered { reply, .. } => Some(reply.clone()),
        _ => None,
    })
    .await;
    assert_eq!(refusal["reason"], json!("unrecovered"));
    assert_eq!(refusal["recovered"], json!(false));
    // Nothing after the hole was delivered, and the topic is no longer joined.
    assert_quiet(&mut sub.pushes).await;
    let push = sub.handle.push(TOPIC, "news", json!({})).await;
    assert!(matches!(push, Err(PushError::NotJoined { .. })), "{push:?}");
    // The hub does not hold it as a member either.
    assert!(eventually(|| hub.service().member_count(TOPIC) == 0).await);
}

#[actix_rt::test]
async fn a_handler_too_slow_for_a_recoverable_topic_is_told_what_it_missed() {
    let hub = start_hub(&history_config(64));
    let board = switchboard();
    let mut config = fast_config(&hub.socket_url());
    config.snapshotter = Some(Snapshotter::in_memory());
    let handle = open(&board, config).await;
    let mut events = handle.events();
    // Room for 4: the rest of a burst of 10 cannot be handed over.
    let mut pushes = handle.incoming(TOPIC, None, 4);
    handle
        .join_recoverable(TOPIC, json!({}), false)
        .await
        .expect("joined");
    broadcast(&hub, 1..=10).await;
    let mut missed = Vec::new();
    while missed.len() < 6 {
        let gap = wait_for(&mut events, |event| match event {
            ConnectEvent::Gap { expected, got, .. } => Some((*expected, *got)),
            _ => None,
        })
        .await;
        missed.push(gap);
    }
    assert_eq!(missed, (5..=10).map(|n| (n, n + 1)).collect::<Vec<_>>());
    assert_eq!(next_sequences(&mut pushes, 4).await, vec![1, 2, 3, 4]);
}

#[actix_rt::test]
async fn seq_4_a_history_dropped_under_a_live_subscriber_is_announced_not_silent() {
    let mut config = history_config(64);
    config.history.max_topics = 1;
    let hub = start_hub(&config);
    let board = switchboard();
    let url = hub.socket_url();
    let (mut sub, _) = subscriber(&board, &url, Snapshotter::in_memory(), false).await;
    broadcast(&hub, 1..=3).await;
    assert_eq!(next_sequences(&mut sub.pushes, 3).await, vec![1, 2, 3]);
    // Another recoverable topic pushes this one's history out; it comes
    // back in a new epoch.
    hub.service()
        .hub()
        .send(Broadcast {
            topic: "room:feed:other".to_owned(),
            event: "news".to_owned(),
            payload: json!({ "n": 1 }),
        })
        .await
        .expect("hub alive");
    broadcast(&hub, 1..=1).await;
    let gap = wait_for(&mut sub.events, |event| match event {
        ConnectEvent::Gap { expected, got, .. } => Some((*expected, *got)),
        _ => None,
    })
    .await;
    assert_eq!(
        gap,
        (4, 1),
        "the old series ended at 3; the new one starts at 1"
    );
    assert_eq!(next_sequences(&mut sub.pushes, 1).await, vec![1]);
    broadcast(&hub, 2..=2).await;
    assert_eq!(next_sequences(&mut sub.pushes, 1).await, vec![2]);
}

#[actix_rt::test]
async fn seq_8_a_live_gap_rejoins_from_the_position_and_the_replay_fills_it() {
    use support::script_server::ScriptServer;
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let mut config = fast_config(&server.url());
    config.snapshotter = Some(Snapshotter::in_memory());
    let handle = open(&board, config).await;
    let mut pushes = handle.incoming(TOPIC, None, 100);
    handle
        .join_recoverable(TOPIC, json!({}), false)
        .await
        .expect("joined");
    let push = |sequence: u64| {
        let envelope = json!({"channel": TOPIC, "aspect": "news", "sequence": sequence,
            "epoch": "e1", "produced_at": 1, "producer": "hub", "payload": {"n": sequence}});
        json!([null, null, TOPIC, "news", envelope])
    };
    server.send(push(1));
    server.send(push(3)); // 2 is missing: a live gap
                          // The client rejoins, resuming from the last sequence it delivered.
    let first = server.next("phx_join").await;
    assert!(
        first.frame[4].get("resume").is_none(),
        "nothing to resume yet"
    );
    let rejoin = server.next("phx_join").await;
    assert_eq!(
        rejoin.frame[4]["resume"],
        json!({"sequence": 1, "epoch": "e1", "strict": false})
    );
    // The "replay": 2 then 3 again.
    server.send(push(2));
    server.send(push(3));
    server.send(push(4));
    assert_eq!(next_sequences(&mut pushes, 4).await, vec![1, 2, 3, 4]);
    assert_quiet(&mut pushes).await;
}

#[actix_rt::test]
async fn sec_4_a_resume_from_zero_replays_at_most_the_cap() {
    let mut config = history_config(1000);
    config.history.max_replay = 50;
    let hub = start_hub(&config);
    let mut first = Client::to(&hub).await;
    let reply = first.join(TOPIC, "1").await;
    let epoch = reply[4]["response"]["epoch"].clone();
    broadcast(&hub, 1..=400).await;
    let mut late = Client::to(&hub).await;
    late.send(
        Some("1"),
        Some("1"),
        TOPIC,
        "phx_join",
        json!({"resume": {"sequence": 0, "epoch": epoch, "strict": false}}),
    )
    .await;
    let reply = late.recv().await;
    assert_eq!(reply[4]["response"]["recovered"], json!(false), "{reply}");
    assert_eq!(reply[4]["response"]["sequence"], json!(400));
    let mut replayed = Vec::new();
    for _ in 0..50 {
        replayed.push(late.recv().await[4]["sequence"].as_u64().expect("sequence"));
    }
    assert_eq!(
        replayed,
        (351..=400).collect::<Vec<_>>(),
        "the newest 50 only"
    );
    // Nothing more was replayed: the next frame is a live one.
    broadcast(&hub, 401..=401).await;
    assert_eq!(late.recv().await[4]["sequence"], json!(401));
}

#[actix_rt::test]
async fn sec_4_a_wrong_typed_resume_is_refused_not_taken_for_a_fresh_join() {
    let hub = start_hub(&history_config(16));
    let mut client = Client::to(&hub).await;
    client
        .send(
            Some("1"),
            Some("1"),
            TOPIC,
            "phx_join",
            json!({"resume": {"sequence": 1, "epoch": "e", "strict": "yes"}}),
        )
        .await;
    assert_eq!(
        client.recv().await,
        json!(["1", "1", TOPIC, "phx_reply", error("invalid")])
    );
    assert_eq!(hub.service().member_count(TOPIC), 0);
}
