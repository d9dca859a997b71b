//! Many supervised connections through a fault-injecting proxy: cuts,
//! stalls, and the dial budget (NET-2, NET-5, NET-10 at scale).

mod support;

use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use serde_json::json;
use support::client::*;
use support::fault_proxy::{cut_every, Cut, FaultProxy};
use support::*;
use switchboard::client::{ConnectEvent, ConnectionStatus, PhoenixHandle, Switchboard};
use tokio::sync::broadcast;

const CHAOS_WAIT: Duration = Duration::from_secs(30);

struct Fleet {
    handles: Vec<PhoenixHandle>,
    events: Vec<broadcast::Receiver<ConnectEvent>>,
}

async fn fleet(board: &Addr<Switchboard>, url: &str, size: usize, topics: &[&str]) -> Fleet {
    let mut handles = Vec::new();
    let mut events = Vec::new();
    for _ in 0..size {
        let mut config = fast_config(url);
        config.heartbeat_interval = Duration::from_secs(1);
        config.reconnect.initial_interval = Duration::from_millis(50);
        config.reconnect.max_interval = Duration::from_millis(500);
        let handle = open(board, config).await;
        events.push(handle.events());
        handles.push(handle);
    }
    let joins = handles.iter().flat_map(|handle| {
        topics.iter().map(move |topic| {
            let handle = handle.clone();
            let topic = topic.to_string();
            async move { handle.join(&topic, json!({})).await }
        })
    });
    for joined in futures_util::future::join_all(joins).await {
        assert!(joined.is_ok(), "{joined:?}");
    }
    Fleet { handles, events }
}

impl Fleet {
    /// Waits until every connection has rejoined every one of `topics`.
    async fn all_rejoined(&mut self, topics: usize) {
        let waits = self.events.iter_mut().map(|events| async move {
            let mut rejoined = 0;
            while rejoined < topics {
                match events.recv().await {
                    Ok(ConnectEvent::Rejoined { .. }) => rejoined += 1,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => panic!("events closed"),
                }
            }
        });
        tokio::time::timeout(CHAOS_WAIT, futures_util::future::join_all(waits))
            .await
            .expect("every connection rejoins every topic in time");
    }
}

fn largest_share_in_window(times: &[Instant], window: Duration) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] >= window {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most as f64 / sorted.len().max(1) as f64
}

#[actix_web::test]
async fn two_hundred_connections_survive_twenty_cuts() {
    let mut config = test_config();
    config.server.max_connections = 1_000;
    let hub = start_hub(&config);
    let proxy = FaultProxy::start(hub.addr());
    let url = format!("ws://{}/socket/websocket", proxy.addr());
    let board = Switchboard::new(20_000).start();
    let topics = ["room:a", "room:b"];
    let mut fleet = fleet(&board, &url, 200, &topics).await;
    let mut cycles = Vec::new();
    for cut in 0..20 {
        let how = if cut % 2 == 0 { Cut::Reset } else { Cut::Fin };
        let started = Instant::now();
        proxy.cut_all(how);
        fleet.all_rejoined(topics.len()).await;
        cycles.push(started.elapsed());
    }
    cycles.sort();
    eprintln!(
        "200 connections x 20 cuts: cut-to-all-rejoined p50 {:?}, max {:?}",
        cycles[cycles.len() / 2],
        cycles[cycles.len() - 1]
    );
    for handle in &fleet.handles {
        assert_eq!(handle.status(), ConnectionStatus::Connected);
        assert_eq!(
            handle.heartbeat_timers(),
            1,
            "one heartbeat timer per connection"
        );
        assert_eq!(handle.dial_loops(), 0, "no reconnect loop left running");
        assert_eq!(handle.pending_requests(), 0, "no request left pending");
    }
    let service = hub.service();
    assert!(
        eventually(
            || service.member_count("room:a") == 200 && service.member_count("room:b") == 200
        )
        .await
    );
    let reply = fleet.handles[199]
        .push("room:b", "ping", json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(reply.response, json!({"n": 1}));
}

#[actix_web::test]
async fn net_2_dial_budget_spreads_500_redials() {
    let mut config = test_config();
    config.server.max_connections = 1_000;
    let hub = start_hub(&config);
    let proxy = FaultProxy::start(hub.addr());
    let url = format!("ws://{}/socket/websocket", proxy.addr());
    let board =
        Switchboard::new(switchboard::client::Switchboard::DEFAULT_DIALS_PER_SECOND).start();
    let mut fleet = fleet(&board, &url, 500, &["room:a"]).await;
    let before = proxy.accept_times().len();
    proxy.cut_all(Cut::Reset);
    fleet.all_rejoined(1).await;
    let redials: Vec<Instant> = proxy.accept_times()[before..].to_vec();
    assert!(
        redials.len() >= 500,
        "every connection redialled: {}",
        redials.len()
    );
    let share = largest_share_in_window(&redials, Duration::from_millis(100));
    eprintln!(
        "500 redials: largest share in any 100 ms window {:.1} %",
        share * 100.0
    );
    assert!(
        share <= 0.20,
        "{:.1} % of the dials fell in one 100 ms window",
        share * 100.0
    );
}

#[actix_web::test]
async fn net_5_stalled_peer_detected_within_two_heartbeats_and_recovers() {
    let hub = start_hub(&test_config());
    let proxy = FaultProxy::start(hub.addr());
    let url = format!("ws://{}/socket/websocket", proxy.addr());
    let board = switchboard();
    let config = fast_config(&url);
    let interval = config.heartbeat_interval;
    let handle = open(&board, config).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    proxy.stall(true);
    let stalled = Instant::now();
    let reason = wait_for(&mut events, |e| match e {
        ConnectEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    let detected = stalled.elapsed();
    eprintln!("stall detected after {detected:?} (heartbeat {interval:?})");
    assert_eq!(reason, "heartbeat timeout");
    assert!(
        detected <= interval * 2 + Duration::from_millis(100),
        "{detected:?}"
    );
    proxy.stall(false);
    wait_for(&mut events, |e| {
        matches!(e, ConnectEvent::Rejoined { .. }).then_some(())
    })
    .await;
    let reply = handle
        .push("room:a", "ping", json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(reply.response, json!({"n": 1}));
    assert_eq!(handle.heartbeat_timers(), 1);
}

#[actix_web::test]
async fn net_4_joins_precede_buffered_sends_under_latency() {
    let hub = start_hub(&test_config());
    let proxy = FaultProxy::start(hub.addr());
    proxy.set_latency(Duration::from_millis(30));
    let url = format!("ws://{}/socket/websocket", proxy.addr());
    let board = switchboard();
    let handle = open(&board, fast_config(&url)).await;
    let mut events = handle.events();
    let mut echoes = handle.incoming("room:a", Some("shout"), 64);
    handle.join("room:a", json!({})).await.unwrap();
    proxy.cut_all(Cut::Reset);
    wait_for(&mut events, |e| {
        matches!(e, ConnectEvent::Disconnected { .. }).then_some(())
    })
    .await;
    for n in 0..5 {
        handle
            .send("room:a", "shout", json!({"n": n}))
            .await
            .unwrap();
    }
    wait_for(&mut events, |e| {
        matches!(e, ConnectEvent::Rejoined { .. }).then_some(())
    })
    .await;
    // The hub only broadcasts events from a joined member: all five arriving,
    // in order, proves each was written after the rejoin.
    for n in 0..5 {
        let echo = tokio::time::timeout(WAIT, echoes.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echo.payload, json!({"n": n}));
    }
}

/// `publish --rate 500` through a proxy that cuts the link every 300 ms:
/// nothing fails, every message reaches the sink. (The figures printed are
/// for the record; speed is the benchmark's job.) 1,500 messages, or
/// `SWITCHBOARD_FLAP_COUNT`.
#[actix_web::test]
async fn net_1_publish_through_a_link_cut_every_300ms_fails_nothing() {
    let sink = switchboard::sink::CountingSink::new();
    let hub = switchboard::server::HubService::builder(&test_config())
        .sink(std::sync::Arc::new(sink.clone()))
        .start()
        .expect("hub starts");
    let proxy = std::sync::Arc::new(FaultProxy::start(hub.addr()));
    let cutter = cut_every(proxy.clone(), Duration::from_millis(300));
    let url = format!("ws://{}/ingest", proxy.addr());
    let count: u64 = std::env::var("SWITCHBOARD_FLAP_COUNT")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1500);
    let summary = run_publish_with(&url, count, &["--rate", "500"]).await;
    cutter.abort();
    eprintln!(
        "publish {count} at 500/s, cut every 300 ms: {summary}, {} connections",
        proxy.accepted()
    );
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["acked"], count, "{summary}");
    assert!(proxy.accepted() >= 3, "the link was cut: {summary}");
    assert!(sink.stored() >= count);
}
