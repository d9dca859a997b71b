//! A cluster under faults: presence across nodes when one is killed or
//! drained, NATS stopped during broadcasts, an ingest producer redirected
//! to another node mid-stream.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use actix::Actor;
use serde_json::{json, Value};
use support::cluster::{
    addr, joined, push_acked, push_numbers, start_cluster, Layout, Node, CLUSTER_WAIT, DOWN_AFTER,
    HEARTBEAT,
};
use support::fault_proxy::{Cut, FaultProxy};
use support::nats::{nats_or_skip, observer, read_stream, stream_count};
use support::peers::{node_ready, PhoenixPeer};
use support::Client;
use switchboard::client::{OpenProducer, Switchboard};

/// Reads `observer`'s lines until a `users` line satisfies `check`.
async fn users_until(
    observer: &mut PhoenixPeer,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(line) = observer.line_within(left).await else {
            panic!("never saw {what}");
        };
        if line["event"] == "users" && check(&line["users"]) {
            return line["users"].clone();
        }
    }
}

#[actix_web::test]
async fn cl_4_presence_spans_nodes_a_killed_node_leaves_a_drained_one_does_not() {
    let test = "cl_4_presence_spans_nodes_a_killed_node_leaves_a_drained_one_does_not";
    let Some(nats) = nats_or_skip(test) else {
        return;
    };
    if !node_ready(test) {
        return;
    }
    let mut nodes = start_cluster(&Layout::new(&nats.url()), 3).await;
    let room = ["--topic", "room:presence"];
    // bob watches from node 2; ann is on node 1; cy reaches node 3 through
    // the balancer.
    let mut bob = PhoenixPeer::cluster(
        "presence",
        &nodes[1].phoenix_url(),
        &[&room[..], &["--user", "bob"]].concat(),
    );
    assert_eq!(bob.next_line().await["event"], "joined");
    let mut ann = PhoenixPeer::cluster(
        "presence",
        &nodes[0].phoenix_url(),
        &[&room[..], &["--user", "ann"]].concat(),
    );
    let proxy = FaultProxy::start(addr(&nodes[2]));
    let cy_url = format!("ws://{}/socket", proxy.addr());
    let mut cy = PhoenixPeer::cluster(
        "presence",
        &cy_url,
        &[&room[..], &["--user", "cy"]].concat(),
    );
    let all = users_until(&mut bob, "ann, bob and cy", |users| {
        ["ann", "bob", "cy"]
            .iter()
            .all(|key| users.get(*key).is_some())
    })
    .await;
    assert_eq!(all, json!({"ann": 1, "bob": 1, "cy": 1}));
    // ann sees the same from node 1 (her own join may come after the state).
    let seen_by_ann = users_until(&mut ann, "all three from node 1", |users| {
        ["ann", "bob", "cy"]
            .iter()
            .all(|key| users.get(*key).is_some())
    })
    .await;
    assert_eq!(seen_by_ann, all);

    // Node 3 drains: cy moves to node 2 through the balancer and never leaves.
    proxy.set_upstream(addr(&nodes[1]));
    nodes[2].terminate();
    assert_eq!(nodes[2].exited().await, Some(0));
    let exited = Instant::now();
    // Watched past the down period: cy is there in every state bob sees;
    // its new meta joins (2), then the drained node's goes (1).
    let watch_until = exited + DOWN_AFTER + HEARTBEAT * 4;
    let (mut moved, mut settled) = (false, false);
    while Instant::now() < watch_until || !settled {
        let left = watch_until.saturating_duration_since(Instant::now());
        let Some(line) = bob.line_within(left.max(HEARTBEAT)).await else {
            if settled {
                break;
            }
            panic!("bob saw cy move ({moved}) but never settle");
        };
        let left_room = json!({"event": "leave", "key": "cy"});
        assert_ne!(line, left_room, "cy left while moving");
        if line["event"] == "users" {
            assert!(line["users"].get("cy").is_some(), "cy missing from {line}");
            moved |= line["users"]["cy"] == 2;
            settled = moved && line["users"]["cy"] == 1;
        }
    }
    assert!(settled, "cy's meta on the drained node was never let go");

    // Node 1 is killed: ann leaves within the down period (checked every
    // quarter heartbeat).
    nodes[0].kill().await;
    let killed = Instant::now();
    let after = users_until(&mut bob, "ann gone", |users| users.get("ann").is_none()).await;
    let took = killed.elapsed();
    assert_eq!(after, json!({"bob": 1, "cy": 1}));
    assert!(
        took <= DOWN_AFTER + HEARTBEAT * 2,
        "ann left after {took:?}"
    );
    // The period runs from the last heartbeat heard, up to one before the kill.
    assert!(
        took >= DOWN_AFTER - HEARTBEAT * 2,
        "ann left before the down period: {took:?}"
    );
    eprintln!("killed node's presence left after {took:?} (down_after {DOWN_AFTER:?})");
    bob.close_stdin();
    cy.close_stdin();
    bob.result().await;
    cy.result().await;
}

/// Broadcasts the next `tick` (its `n` one more than the last).
async fn tick(publisher: &mut Client, n: &mut u64) {
    *n += 1;
    let r = n.to_string();
    push_acked(publisher, "room:outage", "tick", json!({"n": *n}), &r).await;
}

/// The `n` of the next `tick` a member receives.
async fn next_tick(client: &mut Client) -> u64 {
    loop {
        let frame = client.recv().await;
        if frame[3] == "tick" {
            return frame[4]["n"].as_u64().expect("n");
        }
    }
}

#[actix_web::test]
async fn cl_5_nats_stopped_during_broadcasts_local_delivery_goes_on_and_the_cluster_comes_back() {
    let Some(mut nats) = nats_or_skip(
        "cl_5_nats_stopped_during_broadcasts_local_delivery_goes_on_and_the_cluster_comes_back",
    ) else {
        return;
    };
    let mut nodes = start_cluster(&Layout::new(&nats.url()), 2).await;
    const TOPIC: &str = "room:outage";
    let mut local = joined(&nodes[0], TOPIC).await;
    let mut remote = joined(&nodes[1], TOPIC).await;
    let mut publisher = joined(&nodes[0], TOPIC).await;
    let mut n = 0u64;
    tick(&mut publisher, &mut n).await;
    assert_eq!(next_tick(&mut local).await, 1);
    assert_eq!(
        next_tick(&mut remote).await,
        1,
        "across nodes before the outage"
    );

    nats.kill();
    let health = nodes[0]
        .wait_health("degraded", |health| health["status"] == "degraded")
        .await;
    assert_eq!(health["healthy"], true, "degraded, not dead: {health}");
    assert_eq!(health["details"]["cluster"]["state"], "disconnected");
    // A join on a topic the node did not follow is answered at once.
    let mut late = Client::connect(nodes[0].socket()).await;
    let asked = Instant::now();
    let reply = late.join("room:new-in-the-outage", "1").await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "joined after {:?}",
        asked.elapsed()
    );
    // Two seconds of broadcasts without NATS: the local member gets each.
    let outage = Instant::now();
    let mut during = 0;
    while outage.elapsed() < Duration::from_secs(2) {
        tick(&mut publisher, &mut n).await;
        during += 1;
        assert_eq!(next_tick(&mut local).await, during + 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nats.restart();
    for node in &nodes {
        node.wait_health("connected again", |health| {
            health["details"]["cluster"]["state"] == "connected" && health["status"] == "serving"
        })
        .await;
    }
    // Cluster delivery resumes: the next broadcasts reach node 2 again.
    let mut resumed = None;
    let deadline = Instant::now() + CLUSTER_WAIT;
    while resumed.is_none() && Instant::now() < deadline {
        tick(&mut publisher, &mut n).await;
        local.recv().await;
        let got = tokio::time::timeout(Duration::from_millis(200), next_tick(&mut remote)).await;
        resumed = got.ok();
    }
    let resumed = resumed.expect("broadcasts reach node 2 after the outage");
    assert!(
        resumed > during + 1,
        "what NATS could not carry was not held: {resumed}"
    );
    let health = nodes[0].health().await;
    let dropped = health["details"]["cluster"]["dropped"].as_u64().unwrap();
    assert!(dropped >= 1, "what could not leave was counted: {health}");
    for node in &mut nodes {
        assert!(
            node.running(),
            "node {} crashed:\n{}",
            node.id,
            node.log_tail()
        );
    }
    eprintln!(
        "NATS away 2 s: {during} local broadcasts delivered, {dropped} counted as not carried"
    );
}

#[actix_web::test]
async fn cl_6_a_producer_redirected_to_another_node_mid_stream_is_stored_exactly_once() {
    let Some(nats) = nats_or_skip(
        "cl_6_a_producer_redirected_to_another_node_mid_stream_is_stored_exactly_once",
    ) else {
        return;
    };
    let mut layout = Layout::new(&nats.url());
    layout.extra = format!(
        "[sink]\ntype = \"jetstream\"\nurl = {:?}\n[history]\ntopics = [\"feed:*\"]\n",
        nats.url()
    );
    let nodes = start_cluster(&layout, 2).await;
    let proxy = FaultProxy::start(addr(&nodes[0]));
    let board = Switchboard::new(1000).start();
    let mut config = support::client::fast_config(&format!("ws://{}/ingest", proxy.addr()));
    config.buffer_deadline = Duration::from_secs(30);
    config.buffer_max_frames = 20_000;
    let producer = board.send(OpenProducer(config)).await.unwrap().unwrap();
    const TOTAL: u64 = 10_000;
    for i in 0..TOTAL {
        producer
            .publish("readings", "reading", json!({"i": i}), false)
            .await
            .expect("published");
        if i == TOTAL / 3 {
            // Cut mid-stream; the balancer now sends the producer to node 2.
            proxy.set_upstream(addr(&nodes[1]));
            proxy.cut_all(Cut::Reset);
        }
    }
    let (_client, js) = observer(&nats.url()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stream_count(&js, "FEDERATED").await < TOTAL && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = read_stream(&js, "FEDERATED").await;
    let ids: BTreeSet<&str> = stored.iter().map(|message| message.id.as_str()).collect();
    let values: BTreeSet<u64> = stored
        .iter()
        .map(|message| message.payload["payload"]["i"].as_u64().expect("i"))
        .collect();
    assert_eq!(stored.len() as u64, TOTAL, "stored exactly once");
    assert_eq!(ids.len() as u64, TOTAL, "one id per message");
    assert_eq!(
        values,
        (0..TOTAL).collect::<BTreeSet<u64>>(),
        "none missing"
    );
    let by_node: Vec<u64> = futures_util::future::join_all(nodes.iter().map(Node::health))
        .await
        .iter()
        .map(|health| health["details"]["connections"].as_u64().unwrap_or(0))
        .collect();
    eprintln!(
        "10,000 through two nodes, cut at {}: stored once each (sockets now {by_node:?})",
        TOTAL / 3
    );
}

#[actix_web::test]
async fn cl_4_a_node_restarted_under_its_name_is_a_new_node_to_the_others() {
    let test = "cl_4_a_node_restarted_under_its_name_is_a_new_node_to_the_others";
    let Some(nats) = nats_or_skip(test) else {
        return;
    };
    if !node_ready(test) {
        return;
    }
    let layout = Layout::new(&nats.url());
    let mut nodes = start_cluster(&layout, 2).await;
    const FEED: &str = "feed:restart";
    let room = ["--topic", "room:restart"];
    let mut bob = PhoenixPeer::cluster(
        "presence",
        &nodes[1].phoenix_url(),
        &[&room[..], &["--user", "bob"]].concat(),
    );
    assert_eq!(bob.next_line().await["event"], "joined");
    let _ann = PhoenixPeer::cluster(
        "presence",
        &nodes[0].phoenix_url(),
        &[&room[..], &["--user", "ann"]].concat(),
    );
    users_until(&mut bob, "ann", |users| users.get("ann").is_some()).await;
    let mut subscriber = joined(&nodes[1], FEED).await;
    let mut publisher = joined(&nodes[0], FEED).await;
    push_numbers(&mut publisher, FEED, "say", 1..=3).await;
    // Stored (delivered on node 2) before node 1 goes: a push's reply says
    // it was taken, not yet stored.
    let mut sequences = said_sequences(&mut subscriber, 3).await;

    // Node 1 dies and comes back at once under the same name.
    nodes[0].kill().await;
    let again = Node::spawn(&layout, "n1").await;
    again
        .wait_health("the restarted node hears node 2", |health| {
            health["details"]["cluster"]["peers"]
                .as_array()
                .is_some_and(|peers| peers.len() == 1)
        })
        .await;
    let _dee = PhoenixPeer::cluster(
        "presence",
        &again.phoenix_url(),
        &[&room[..], &["--user", "dee"]].concat(),
    );
    // Its new member is heard; the old process's member goes after the
    // down period, not kept as if the node had never gone.
    users_until(&mut bob, "dee, and ann gone", |users| {
        users.get("dee").is_some() && users.get("ann").is_none()
    })
    .await;
    // Its recoverable broadcasts are new messages, not taken for resends.
    let mut publisher = joined(&again, FEED).await;
    push_numbers(&mut publisher, FEED, "say", 4..=6).await;
    sequences.extend(said_sequences(&mut subscriber, 3).await);
    assert_eq!(sequences, (1..=6).collect::<Vec<u64>>());
}

/// The sequences of the next `count` `say`s a client receives.
async fn said_sequences(client: &mut Client, count: usize) -> Vec<u64> {
    let mut sequences = Vec::new();
    while sequences.len() < count {
        let frame = client.recv().await;
        if frame[3] == "say" {
            sequences.push(frame[4]["sequence"].as_u64().expect("a sequence"));
        }
    }
    sequences
}
