//! Several `serve` nodes over one nats-server: broadcasts reach every
//! node's members once; concurrent publishes into one recoverable topic
//! keep one order everywhere; a client that loses its node resumes on
//! another exactly where it was, or is told of the gap.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::client::{fast_config, open, switchboard, wait_for};
use support::cluster::{
    addr, joined, push_acked, push_numbers, start_cluster, Layout, Node, CLUSTER_WAIT,
};
use support::fault_proxy::{Cut, FaultProxy};
use support::nats::nats_or_skip;
use support::peers::{node_ready, PhoenixPeer};
use support::Client;
use switchboard::client::{ConnectEvent, Incoming, PhoenixHandle};
use tokio::sync::mpsc;

/// The next message of `pushes`, bounded.
async fn next(pushes: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(CLUSTER_WAIT, pushes.recv())
        .await
        .expect("a message in time")
        .expect("the subscription lives")
}

#[actix_web::test]
async fn cl_1_broadcasts_from_every_node_reach_every_member_on_every_node_once() {
    let test = "cl_1_broadcasts_from_every_node_reach_every_member_on_every_node_once";
    let Some(nats) = nats_or_skip(test) else {
        return;
    };
    if !node_ready(test) {
        return;
    }
    let nodes = start_cluster(&Layout::new(&nats.url()), 3).await;
    const TOPIC: &str = "room:all";

    // Rust supervised clients, one on each node.
    let board = switchboard();
    let mut rust: Vec<(PhoenixHandle, mpsc::Receiver<Incoming>)> = Vec::new();
    for node in &nodes {
        let handle = open(&board, fast_config(&node.client_url())).await;
        let pushes = handle.incoming(TOPIC, Some("say"), 256);
        handle.join(TOPIC, json!({})).await.expect("joins");
        rust.push((handle, pushes));
    }
    // phoenix.js on node 1 listens; phoenix.js on nodes 2 and 3 push.
    let topic = ["--topic", TOPIC, "--event", "say"];
    let mut listener = PhoenixPeer::cluster(
        "collect",
        &nodes[0].phoenix_url(),
        &[&topic[..], &["--count", "20"]].concat(),
    );
    assert_eq!(listener.next_line().await["event"], "joined");
    let pushers: Vec<PhoenixPeer> = [(1, "b"), (2, "c")]
        .into_iter()
        .map(|(n, from)| {
            let extra = [&topic[..], &["--count", "10", "--from", from]].concat();
            PhoenixPeer::cluster("push", &nodes[n].phoenix_url(), &extra)
        })
        .collect();
    for pusher in pushers {
        assert_eq!(pusher.result().await["pushed"], 10);
    }
    let expected: BTreeSet<String> = ["b", "c"]
        .iter()
        .flat_map(|from| (1..=10).map(move |i| format!("{from}-{i}")))
        .collect();
    let heard = listener.result().await;
    let heard: Vec<String> = serde_json::from_value(heard["received"].clone()).unwrap();
    assert_eq!(heard.len(), 20, "each once: {heard:?}");
    assert_eq!(heard.iter().cloned().collect::<BTreeSet<_>>(), expected);
    for (n, (_, pushes)) in rust.iter_mut().enumerate() {
        let mut got = Vec::new();
        for _ in 0..20 {
            got.push(
                next(pushes).await.payload.to_value()["n"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        assert_eq!(
            got.iter().cloned().collect::<BTreeSet<_>>(),
            expected,
            "node {}",
            n + 1
        );
        // Nothing twice: no 21st message comes.
        let extra = tokio::time::timeout(Duration::from_millis(300), pushes.recv()).await;
        assert!(extra.is_err(), "node {} got a message twice", n + 1);
    }
    let health = nodes[0].health().await;
    let cluster = &health["details"]["cluster"];
    assert_eq!(cluster["node_id"], "n1");
    assert!(cluster["delivered"].as_u64().unwrap() >= 20, "{health}");
    assert_eq!(cluster["peers"].as_array().unwrap().len(), 2, "{health}");
    let metrics = metrics_text(&nodes[0]).await;
    for name in [
        "switchboard_cluster_published_total",
        "switchboard_cluster_delivered_total",
        "switchboard_cluster_subscriptions",
        "switchboard_cluster_peers",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
}

/// `GET /metrics` of `node`.
async fn metrics_text(node: &Node) -> String {
    let url = format!("http://{}/metrics", node.addr);
    let mut response = awc::Client::new().get(url).send().await.expect("answered");
    let body = response.body().limit(1 << 22).await.expect("a body");
    String::from_utf8_lossy(&body).into_owned()
}

#[actix_web::test]
async fn cl_2_concurrent_publishes_from_three_nodes_keep_one_order_everywhere() {
    let Some(nats) =
        nats_or_skip("cl_2_concurrent_publishes_from_three_nodes_keep_one_order_everywhere")
    else {
        return;
    };
    let nodes = start_cluster(&Layout::new(&nats.url()), 3).await;
    const TOPIC: &str = "feed:race";
    const EACH: usize = 1000;

    // One subscriber on each node, joined before anything is published.
    let mut subscribers = Vec::new();
    for node in &nodes {
        let mut client = Client::connect(node.socket()).await;
        let reply = client.join(TOPIC, "1").await;
        assert_eq!(reply[4]["status"], "ok", "{reply}");
        subscribers.push(client);
    }
    // Three publishers, one per node, all at once.
    let publishers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let url = node.socket();
            tokio::spawn(async move {
                let mut client = Client::connect(url).await;
                client.join(TOPIC, "1").await;
                for i in 0..EACH {
                    let payload = json!({"n": format!("{n}-{i}")});
                    push_acked(&mut client, TOPIC, "say", payload, &i.to_string()).await;
                }
            })
        })
        .collect();
    let mut orders = Vec::new();
    for (n, client) in subscribers.iter_mut().enumerate() {
        let mut order = Vec::new();
        while order.len() < 3 * EACH {
            let frame = client.recv().await;
            if frame[3] != "say" {
                continue;
            }
            let sequence = frame[4]["sequence"].as_u64().unwrap();
            assert_eq!(
                sequence,
                order.len() as u64 + 1,
                "node {}: a hole or a repeat",
                n + 1
            );
            order.push(frame[4]["payload"]["n"].as_str().unwrap().to_owned());
        }
        orders.push(order);
    }
    for publisher in publishers {
        publisher.await.expect("publisher done");
    }
    let unique: BTreeSet<&String> = orders[0].iter().collect();
    assert_eq!(unique.len(), 3 * EACH, "every message once");
    assert_eq!(orders[0], orders[1], "nodes 1 and 2 saw one order");
    assert_eq!(orders[0], orders[2], "nodes 1 and 3 saw one order");
    // Any node answers a history request for any topic: node 3 stops
    // following the topic (its members leave), then reads the stream.
    drop(subscribers);
    nodes[2]
        .wait_health("no topic followed", |health| {
            health["details"]["cluster"]["subscriptions"] == 0
        })
        .await;
    let url = format!(
        "http://{}/history/{TOPIC}?since=2990&limit=100",
        nodes[2].addr
    );
    let page = support::cluster::http_json(&url).await;
    let sequences: Vec<u64> = page["publications"]
        .as_array()
        .expect("publications")
        .iter()
        .map(|p| p["sequence"].as_u64().expect("a sequence"))
        .collect();
    assert_eq!(sequences, (2991..=3000).collect::<Vec<u64>>(), "{page}");
    assert_eq!(page["top"], 3000);
    let last = page["publications"][9]["payload"]["n"].as_str().expect("n");
    assert_eq!(last, orders[0][2999], "the stream's order");
    let conflicts: u64 = futures_util::future::join_all(nodes.iter().map(Node::health))
        .await
        .iter()
        .map(|health| {
            health["details"]["cluster"]["sequence_conflicts"]
                .as_u64()
                .unwrap()
        })
        .sum();
    eprintln!("3 x {EACH} concurrent recoverable publishes: {conflicts} compare-and-set retries");
}

/// A supervised client joined to recoverable `topic` through `proxy` (the
/// balancer): its switchboard and handle (kept alive), events and `item`s.
async fn follow_through(
    proxy: &FaultProxy,
    topic: &str,
) -> (
    actix::Addr<switchboard::client::Switchboard>,
    PhoenixHandle,
    tokio::sync::broadcast::Receiver<ConnectEvent>,
    mpsc::Receiver<Incoming>,
) {
    let board = switchboard();
    let url = format!("ws://{}/socket/websocket", proxy.addr());
    let handle = open(&board, fast_config(&url)).await;
    let events = handle.events();
    let pushes = handle.incoming(topic, Some("item"), 1024);
    handle
        .join_recoverable(topic, json!({}), false)
        .await
        .expect("joins through the balancer");
    (board, handle, events, pushes)
}

/// Waits for the next `Rejoined` of `topic`; its reply.
async fn rejoined(
    events: &mut tokio::sync::broadcast::Receiver<ConnectEvent>,
    topic: &str,
) -> Value {
    wait_for(events, |event| match event {
        ConnectEvent::Rejoined { topic: t, reply } if t == topic => Some(reply.clone()),
        _ => None,
    })
    .await
}

#[actix_web::test]
async fn cl_3_a_client_whose_node_is_killed_resumes_on_another_exactly_where_it_was() {
    let Some(nats) =
        nats_or_skip("cl_3_a_client_whose_node_is_killed_resumes_on_another_exactly_where_it_was")
    else {
        return;
    };
    let mut nodes = start_cluster(&Layout::new(&nats.url()), 2).await;
    const TOPIC: &str = "feed:resume";
    const TOTAL: u64 = 200;
    let proxy = FaultProxy::start(addr(&nodes[0]));
    let (_board, _handle, mut events, mut pushes) = follow_through(&proxy, TOPIC).await;

    // Published on node 2 all along, one every 5 ms.
    let publisher_url = nodes[1].socket();
    let publisher = tokio::spawn(async move {
        let mut client = Client::connect(publisher_url).await;
        client.join(TOPIC, "1").await;
        for n in 1..=TOTAL {
            push_acked(&mut client, TOPIC, "item", json!({"n": n}), &n.to_string()).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 50 {
        seen.push(
            next(&mut pushes).await.payload.to_value()["sequence"]
                .as_u64()
                .unwrap(),
        );
    }
    // Node 1 dies mid-stream; the balancer sends the client to node 2.
    proxy.set_upstream(addr(&nodes[1]));
    nodes[0].kill().await;
    let reply = rejoined(&mut events, TOPIC).await;
    assert_eq!(reply["recovered"], json!(true), "{reply}");
    while seen.len() < TOTAL as usize {
        seen.push(
            next(&mut pushes).await.payload.to_value()["sequence"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(
        seen,
        (1..=TOTAL).collect::<Vec<_>>(),
        "every message once, in order"
    );
    publisher.await.expect("publisher done");
    let extra = tokio::time::timeout(Duration::from_millis(300), pushes.recv()).await;
    assert!(extra.is_err(), "nothing twice");
}

#[actix_web::test]
async fn cl_3_a_client_away_longer_than_the_history_is_told_of_the_gap() {
    let Some(nats) = nats_or_skip("cl_3_a_client_away_longer_than_the_history_is_told_of_the_gap")
    else {
        return;
    };
    let mut layout = Layout::new(&nats.url());
    layout.extra = "[history]\ntopics = [\"feed:*\"]\nsize = 5\n".to_owned();
    let nodes = start_cluster(&layout, 2).await;
    const TOPIC: &str = "feed:short";
    let proxy = FaultProxy::start(addr(&nodes[0]));
    let (_board, _handle, mut events, mut pushes) = follow_through(&proxy, TOPIC).await;
    let mut publisher = joined(&nodes[1], TOPIC).await;
    push_numbers(&mut publisher, TOPIC, "item", 1..=3).await;
    for n in 1..=3u64 {
        assert_eq!(
            next(&mut pushes).await.payload.to_value()["sequence"],
            json!(n)
        );
    }
    // Away while 17 more are published: the stream keeps only 5 (16..20).
    proxy.refuse(true);
    proxy.cut_all(Cut::Reset);
    wait_for(&mut events, |event| {
        matches!(event, ConnectEvent::Disconnected { .. }).then_some(())
    })
    .await;
    push_numbers(&mut publisher, TOPIC, "item", 4..=20).await;
    proxy.set_upstream(addr(&nodes[1]));
    proxy.refuse(false);
    let reply = rejoined(&mut events, TOPIC).await;
    assert_eq!(reply["recovered"], json!(false), "{reply}");
    let gap = wait_for(&mut events, |event| match event {
        ConnectEvent::Gap {
            topic,
            expected,
            got,
        } if topic == TOPIC => Some((*expected, *got)),
        _ => None,
    })
    .await;
    assert_eq!(gap, (4, 16), "the hole is named");
    for n in 16..=20u64 {
        assert_eq!(
            next(&mut pushes).await.payload.to_value()["sequence"],
            json!(n)
        );
    }
}

#[actix_web::test]
async fn cl_3_a_history_stream_made_again_starts_a_new_epoch() {
    let Some(nats) = nats_or_skip("cl_3_a_history_stream_made_again_starts_a_new_epoch") else {
        return;
    };
    let nodes = start_cluster(&Layout::new(&nats.url()), 2).await;
    const TOPIC: &str = "feed:remade";
    let mut subscriber = joined(&nodes[1], TOPIC).await;
    let mut publisher = joined(&nodes[0], TOPIC).await;
    push_numbers(&mut publisher, TOPIC, "say", 1..=2).await;
    let first = next_said(&mut subscriber).await;
    let before = next_said(&mut subscriber).await;
    assert_eq!(
        (first["sequence"].as_u64(), before["sequence"].as_u64()),
        (Some(1), Some(2))
    );
    // The operator deletes the stream; the next broadcast makes it again.
    let (_client, js) = support::nats::observer(&nats.url()).await;
    js.delete_stream("SBTEST").await.expect("deleted");
    push_acked(&mut publisher, TOPIC, "say", json!({"n": 3}), "3").await;
    let after = tokio::time::timeout(CLUSTER_WAIT, next_said(&mut subscriber))
        .await
        .expect("the broadcast after the stream was made again arrives");
    assert_eq!(after["sequence"], 1, "{after}");
    assert_ne!(after["epoch"], before["epoch"], "a new epoch: {after}");
    assert_eq!(after["payload"]["n"], 3);
}

/// The payload of the next `say` a client receives.
async fn next_said(client: &mut Client) -> Value {
    loop {
        let frame = client.recv().await;
        if frame[3] == "say" {
            return frame[4].clone();
        }
    }
}
