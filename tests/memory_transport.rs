//! NET-13. Clients and a hub in one process through the in-memory transport
//! only: joins (and their authorization), replies, broadcasts, a forced drop
//! with rejoin, history resume and ingest, with no TCP socket in the process.
//!
//! The hub is built and never started (no HTTP server exists), and
//! [`assert_no_tcp`] checks every socket this process holds against the
//! kernel's TCP tables (`/proc/net/tcp`, `tcp6`) while the clients are
//! connected: there is none.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use support::client::*;
use support::*;
use switchboard::client::{
    ClientAuth, ConnectEvent, DialErrorKind, Incoming, JoinError, OpenError, OpenProducer,
    PhoenixHandle, TokenSource,
};
use switchboard::config::Config;
use switchboard::server::HubService;
use switchboard::sink::CountingSink;
use switchboard::transport::MemoryTransport;
use tokio::sync::mpsc;

const FEED: &str = "room:feed:1";

fn hub(config: &Config) -> HubService {
    HubService::builder(config)
        .credentials(bearer("let-me-in"))
        .build()
        .expect("hub builds")
}

fn history_config() -> Config {
    let mut config = test_config();
    config.history.topics = vec!["room:feed:*".to_owned()];
    config.history.size = 64;
    config
}

fn memory_config(memory: &MemoryTransport, path: &str) -> switchboard::client::ConnectionConfig {
    let mut config = fast_config(&format!("ws://hub{path}"));
    config.transport = Some(Arc::new(memory.clone()));
    config.auth = ClientAuth::Bearer(TokenSource::Static("let-me-in".to_owned()));
    config
}

/// The inodes of the sockets this process holds.
fn socket_inodes() -> HashSet<String> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Ok(target) = std::fs::read_link(entry.expect("fd").path()) else {
            continue; // closed meanwhile
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    inodes
}

/// Fails if any socket of this process is a TCP socket (listening or not).
fn assert_no_tcp() {
    let ours = socket_inodes();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
            let inode = line.split_whitespace().nth(9).unwrap_or("");
            assert!(
                !ours.contains(inode),
                "this process holds a TCP socket: {line}"
            );
        }
    }
}

async fn next_push(pushes: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(WAIT, pushes.recv())
        .await
        .expect("a push in time")
        .expect("pushes open")
}

async fn rejoined(
    handle: &mut tokio::sync::broadcast::Receiver<ConnectEvent>,
    topic: &str,
) -> serde_json::Value {
    wait_for(handle, |event| match event {
        ConnectEvent::Rejoined { topic: t, reply } if t == topic => Some(reply.clone()),
        _ => None,
    })
    .await
}

#[actix_rt::test]
async fn channels_through_the_memory_transport_without_any_tcp_socket() {
    let hub = hub(&history_config());
    let memory = MemoryTransport::new(&hub);
    let board = switchboard();

    // Authorization: the hub's credentials are checked as on an upgrade.
    let mut anonymous = memory_config(&memory, "/socket/websocket");
    anonymous.auth = ClientAuth::None;
    anonymous.fail_first_connect = true;
    let refused = board
        .send(switchboard::client::Open(anonymous))
        .await
        .expect("switchboard alive");
    match refused {
        Err(OpenError::FirstConnect(error)) => {
            assert_eq!(error.kind(), &DialErrorKind::Refused { status: 401 })
        }
        other => panic!("expected a 401, got {:?}", other.map(|_| ())),
    }

    let alice: PhoenixHandle = open(&board, memory_config(&memory, "/socket/websocket")).await;
    let bob: PhoenixHandle = open(&board, memory_config(&memory, "/socket/websocket")).await;
    let mut alice_events = alice.events();
    let mut bob_events = bob.events();

    // Joins, and a join the router refuses.
    alice
        .join("room:lobby", json!({}))
        .await
        .expect("alice joins");
    bob.join("room:lobby", json!({})).await.expect("bob joins");
    assert_eq!(hub.member_count("room:lobby"), 2);
    match alice.join("nowhere:1", json!({})).await {
        Err(JoinError::Refused { .. }) => {}
        other => panic!("an unrouted topic is refused, got {other:?}"),
    }
    assert_no_tcp();

    // A reply, a broadcast from a member, one from the app.
    let reply = alice
        .push("room:lobby", "ping", json!({"n": 1}))
        .await
        .expect("a reply");
    assert_eq!(reply.response, json!({"n": 1}));
    let mut bob_shouts = bob.incoming("room:lobby", Some("shout"), 64);
    let mut bob_news = bob.incoming("room:lobby", Some("news"), 64);
    alice
        .push("room:lobby", "shout", json!({"from": "alice"}))
        .await
        .expect("shout accepted");
    let heard = next_push(&mut bob_shouts).await;
    assert_eq!(
        (heard.event.as_str(), heard.payload.to_value()),
        ("shout", json!({"from": "alice"}))
    );
    assert_eq!(hub.broadcast("room:lobby", "news", &json!({"n": 2})), 2);
    assert_eq!(next_push(&mut bob_news).await.payload, json!({"n": 2}));

    // A forced drop: both redial and rejoin on their own.
    let dials = memory.dials();
    memory.cut();
    rejoined(&mut alice_events, "room:lobby").await;
    rejoined(&mut bob_events, "room:lobby").await;
    assert!(memory.dials() >= dials + 2, "each client dialled again");
    let reply = bob
        .push("room:lobby", "ping", json!({"after": "cut"}))
        .await
        .expect("a reply after the rejoin");
    assert_eq!(reply.response, json!({"after": "cut"}));

    // History: what was broadcast while the hub was unreachable is replayed.
    let mut feed = alice.incoming(FEED, Some("item"), 64);
    let joined = alice
        .join_recoverable(FEED, json!({}), false)
        .await
        .expect("joins the feed");
    assert_eq!(joined.response["recovered"], json!(false));
    for n in 1..=3 {
        hub.broadcast(FEED, "item", &json!({"n": n}));
    }
    for n in 1..=3u64 {
        assert_eq!(
            next_push(&mut feed).await.payload.to_value()["sequence"],
            json!(n)
        );
    }
    memory.set_reachable(false);
    wait_for(&mut alice_events, |event| {
        matches!(event, ConnectEvent::Disconnected { .. }).then_some(())
    })
    .await;
    for n in 4..=6 {
        hub.broadcast(FEED, "item", &json!({"n": n}));
    }
    memory.set_reachable(true);
    let reply = rejoined(&mut alice_events, FEED).await;
    assert_eq!(reply["recovered"], json!(true), "{reply}");
    for n in 4..=6u64 {
        let push = next_push(&mut feed).await;
        assert_eq!(push.payload.to_value()["sequence"], json!(n));
        assert_eq!(push.payload.to_value()["payload"]["n"], json!(n));
    }
    assert_no_tcp();
}

#[actix_rt::test]
async fn envelope_producers_ingest_through_the_memory_transport() {
    let sink = CountingSink::new();
    let hub = HubService::builder(&test_config())
        .credentials(bearer("let-me-in"))
        .sink(Arc::new(sink.clone()))
        .build()
        .expect("hub builds");
    let memory = MemoryTransport::new(&hub);
    let board = switchboard();
    let producer = board
        .send(OpenProducer(memory_config(&memory, "/ingest")))
        .await
        .expect("switchboard alive")
        .expect("opened");
    for n in 0..100 {
        producer.send_data(json!({"n": n})).await.expect("acked");
    }
    assert_eq!(sink.stored(), 100);
    assert_no_tcp();

    // A path the hub does not serve is a 404, as over HTTP.
    let mut lost = memory_config(&memory, "/nowhere");
    lost.fail_first_connect = true;
    match board
        .send(OpenProducer(lost))
        .await
        .expect("switchboard alive")
    {
        Err(OpenError::FirstConnect(error)) => {
            assert_eq!(error.kind(), &DialErrorKind::Refused { status: 404 })
        }
        other => panic!("expected a 404, got {:?}", other.map(|_| ())),
    }
}
