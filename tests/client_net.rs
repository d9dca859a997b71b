//! NET-1, NET-3, NET-6, NET-9, NET-10 of docs/conformance.md, and the token
//! provider under 401: reconnect policy, bounded buffers, close codes, timers.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use serde_json::json;
use support::client::*;
use support::script_server::ScriptServer;
use support::*;
use switchboard::client::{
    ClientAuth, ConnectEvent, ConnectionStatus, Open, OpenError, PushError, SendError, Switchboard,
    TokenSource,
};

/// A loopback address where nothing listens.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("ws://{addr}/socket/websocket")
}

#[actix_web::test]
async fn net_1_backoff_spacing_and_max_retries() {
    let board = switchboard();
    let mut config = fast_config(&dead_url());
    config.reconnect.initial_interval = Duration::from_millis(50);
    config.reconnect.max_interval = Duration::from_millis(400);
    config.reconnect.max_retries = 5;
    let handle = open(&board, config).await;
    let mut events = handle.events();
    let mut failures = Vec::new();
    let mut scheduled = Vec::new();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await.unwrap() {
                ConnectEvent::Disconnected { .. } => failures.push(Instant::now()),
                ConnectEvent::Reconnecting { attempt, .. } => scheduled.push(attempt),
                ConnectEvent::Closed { reason } => return reason,
                _ => {}
            }
        }
    })
    .await
    .expect("gives up in time");
    assert_eq!(closed, "gave up after 5 attempts");
    assert_eq!(scheduled, [1, 2, 3, 4, 5]);
    assert_eq!(handle.status(), ConnectionStatus::Closed);
    assert_eq!(handle.dial_loops(), 0);
    // Each gap is the jittered delay: at least the initial interval, at most
    // the exponential ceiling (plus scheduling slack).
    let ceilings = [100u64, 200, 400, 400, 400];
    for (n, gap) in failures.windows(2).map(|w| w[1] - w[0]).enumerate() {
        assert!(
            gap >= Duration::from_millis(45),
            "gap {n} too short: {gap:?}"
        );
        assert!(
            gap <= Duration::from_millis(ceilings[n] + 150),
            "gap {n} too long: {gap:?}"
        );
    }
}

#[actix_web::test]
async fn net_1_fail_first_connect_fails_open() {
    let board = switchboard();
    let mut config = fast_config(&dead_url());
    config.fail_first_connect = true;
    let outcome = board.send(Open(config)).await.unwrap();
    assert!(
        matches!(outcome, Err(OpenError::FirstConnect(_))),
        "{:?}",
        outcome.err()
    );
}

#[actix_web::test]
async fn net_1_refused_token_asks_the_provider_and_backs_off() {
    let hub = start_hub_with_credentials(&test_config(), bearer("good"));
    let calls = Arc::new(AtomicUsize::new(0));
    let fixed = Arc::new(AtomicUsize::new(0));
    let mut config = fast_config(&hub.socket_url());
    config.reconnect.initial_interval = Duration::from_millis(100);
    config.reconnect.max_interval = Duration::from_millis(400);
    let (counter, switch) = (calls.clone(), fixed.clone());
    config.auth = ClientAuth::Bearer(TokenSource::Provider {
        provider: Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let good = switch.load(Ordering::SeqCst) == 1;
            Box::pin(async move { Ok(if good { "good" } else { "stale" }.to_owned()) })
        }),
        fallback: None,
    });
    let board = switchboard();
    let handle = open(&board, config).await;
    let mut events = handle.events();
    let mut refusals = Vec::new();
    while refusals.len() < 5 {
        let reason = wait_for(&mut events, |e| match e {
            ConnectEvent::Disconnected { reason } => Some(reason.clone()),
            _ => None,
        })
        .await;
        assert!(reason.contains("401"), "{reason}");
        refusals.push(Instant::now());
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "the provider is asked before every dial"
    );
    for gap in refusals.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap >= Duration::from_millis(95),
            "401 never loops tightly: {gap:?}"
        );
    }
    fixed.store(1, Ordering::SeqCst);
    wait_connected(&handle).await;
}

#[actix_web::test]
async fn net_3_buffer_while_disconnected_is_bounded() {
    let board = switchboard();
    let mut config = fast_config(&dead_url());
    config.buffer_max_frames = 3;
    let handle = open(&board, config).await;
    let joining = handle.clone();
    actix_web::rt::spawn(async move {
        let _ = joining.join("room:a", json!({})).await;
    });
    let deadline = Instant::now() + WAIT;
    while handle.send("room:a", "early", json!({})).await
        == Err(SendError::NotJoined {
            topic: "room:a".into(),
        })
    {
        assert!(Instant::now() < deadline, "the join was never registered");
        tokio::task::yield_now().await;
    }
    handle.send("room:a", "two", json!({})).await.unwrap();
    handle.send("room:a", "three", json!({})).await.unwrap();
    assert_eq!(
        handle.send("room:a", "four", json!({})).await,
        Err(SendError::BufferFull {
            reason: "buffer_max_frames"
        })
    );
    assert_eq!(
        handle.push("room:a", "five", json!({})).await,
        Err(PushError::BufferFull {
            reason: "buffer_max_frames"
        })
    );
    assert_eq!(handle.pending_requests(), 0, "a refused push holds no slot");
}

#[actix_web::test]
async fn net_3_buffered_sends_expire_at_their_deadline() {
    let board = switchboard();
    let mut config = fast_config(&dead_url());
    config.buffer_deadline = Duration::from_millis(200);
    let handle = open(&board, config).await;
    let joining = handle.clone();
    actix_web::rt::spawn(async move {
        let _ = joining.join("room:a", json!({})).await;
    });
    let started = Instant::now();
    let outcome = loop {
        match handle.push("room:a", "waits", json!({})).await {
            Err(PushError::NotJoined { .. }) => tokio::task::yield_now().await,
            other => break other,
        }
    };
    assert_eq!(
        outcome,
        Err(PushError::Timeout {
            after: Duration::from_millis(200)
        })
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(handle.pending_requests(), 0);
}

#[actix_web::test]
async fn net_6_timeouts_leave_no_pending_entries() {
    let server = ScriptServer::start().await;
    let board = switchboard();
    let mut config = fast_config(&server.url());
    config.push_timeout = Duration::from_millis(100);
    let handle = open(&board, config).await;
    handle.join("room:a", json!({})).await.unwrap();
    server.answer_pushes(false);
    let mut pushes = Vec::new();
    for n in 0..50 {
        let handle = handle.clone();
        pushes.push(actix_web::rt::spawn(async move {
            handle.push("room:a", "slow", json!({"n": n})).await
        }));
    }
    for push in pushes {
        assert!(matches!(
            push.await.unwrap(),
            Err(PushError::Timeout { .. })
        ));
    }
    assert_eq!(handle.pending_requests(), 0);
}

#[actix_web::test]
async fn net_6_too_many_requests_is_an_immediate_error() {
    let server = ScriptServer::start().await;
    let board = switchboard();
    let mut config = fast_config(&server.url());
    config.max_concurrent_requests = 2;
    let handle = open(&board, config).await;
    handle.join("room:a", json!({})).await.unwrap();
    server.answer_pushes(false);
    for _ in 0..2 {
        let handle = handle.clone();
        actix_web::rt::spawn(async move { handle.push("room:a", "slow", json!({})).await });
    }
    let deadline = Instant::now() + WAIT;
    while handle.pending_requests() < 2 {
        assert!(Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    assert_eq!(
        handle.push("room:a", "third", json!({})).await,
        Err(PushError::TooManyRequests { limit: 2 })
    );
}

#[actix_web::test]
async fn net_9_terminal_close_stops_and_surfaces_the_reason() {
    let server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    server.close_all(1008);
    let reason = wait_for(&mut events, |e| match e {
        ConnectEvent::Closed { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("1008"), "{reason}");
    assert_eq!(handle.status(), ConnectionStatus::Closed);
    assert_eq!(handle.dial_loops(), 0, "no dial loop is left to redial");
    assert_eq!(
        server.connection_count(),
        1,
        "a terminal close is not redialled"
    );
}

#[actix_web::test]
async fn net_9_reconnectable_close_redials() {
    let server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    server.close_all(1012);
    wait_for(&mut events, |e| {
        matches!(e, ConnectEvent::Rejoined { .. }).then_some(())
    })
    .await;
    assert_eq!(server.connection_count(), 2);
}

#[actix_web::test]
async fn net_10_forced_restarts_leave_one_loop_and_one_heartbeat() {
    let hub = start_hub(&test_config());
    let board = switchboard();
    let handle = open(&board, fast_config(&hub.socket_url())).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    for _ in 0..20 {
        handle.restart();
        wait_for(&mut events, |e| {
            matches!(e, ConnectEvent::Rejoined { .. }).then_some(())
        })
        .await;
    }
    wait_connected(&handle).await;
    assert_eq!(handle.heartbeat_timers(), 1);
    assert_eq!(handle.dial_loops(), 0);
    assert_eq!(hub.service().member_count("room:a"), 1);
    let reply = handle
        .push("room:a", "ping", json!({"n": 20}))
        .await
        .unwrap();
    assert_eq!(reply.response, json!({"n": 20}));
}

#[actix_web::test]
async fn switchboard_lists_and_closes_connections() {
    let hub = start_hub(&test_config());
    let board = Switchboard::new(1000);
    let directory = board.directory();
    let board = board.start();
    let first = open(&board, fast_config(&hub.socket_url())).await;
    let second = open(&board, fast_config(&hub.socket_url())).await;
    wait_connected(&first).await;
    wait_connected(&second).await;
    let list = board.send(switchboard::client::List).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .all(|(_, _, status)| *status == ConnectionStatus::Connected));
    assert_eq!(directory.len(), 2, "readable without a round trip");
    assert!(board
        .send(switchboard::client::Close(first.id()))
        .await
        .unwrap());
    let mut status = first.watch_status();
    tokio::time::timeout(WAIT, status.wait_for(|s| *s == ConnectionStatus::Closed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(directory.len(), 1);
}

#[actix_web::test]
async fn net_9_an_invalid_url_is_terminal_not_retried() {
    let board = switchboard();
    let handle = open(&board, fast_config("http://127.0.0.1:1/not-a-websocket")).await;
    let mut status = handle.watch_status();
    tokio::time::timeout(WAIT, status.wait_for(|s| *s == ConnectionStatus::Closed))
        .await
        .expect("closed in time")
        .unwrap();
    assert_eq!(handle.dial_loops(), 0);
}

/// A WebSocket server that upgrades every connection, sends `greeting`
/// (when there is one), and drops it at once.
async fn dropping_server(greeting: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                if let Some(text) = greeting {
                    use futures_util::SinkExt;
                    let frame = tokio_tungstenite::tungstenite::Message::text(text);
                    let _ = ws.send(frame).await;
                }
            });
        }
    });
    format!("ws://{addr}/socket/websocket")
}

/// The attempt numbers of the next `count` scheduled redials.
async fn redial_attempts(url: &str, count: usize) -> Vec<u32> {
    let board = switchboard();
    let mut config = fast_config(url);
    config.reconnect.initial_interval = Duration::from_millis(10);
    config.reconnect.max_interval = Duration::from_millis(80);
    config.reconnect.stable_after = Duration::from_secs(5);
    let handle = open(&board, config).await;
    let mut events = handle.events();
    let mut attempts = Vec::new();
    while attempts.len() < count {
        attempts.push(
            wait_for(&mut events, |event| match event {
                ConnectEvent::Reconnecting { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .await,
        );
    }
    attempts
}

#[actix_web::test]
async fn net_1_a_server_that_drops_every_socket_at_once_sees_a_growing_backoff() {
    let url = dropping_server(None).await;
    assert_eq!(redial_attempts(&url, 5).await, [1, 2, 3, 4, 5]);
}

#[actix_web::test]
async fn net_1_a_short_link_that_answered_redials_from_a_reset_backoff() {
    let reply = r#"[null,"0","phoenix","phx_reply",{"status":"ok","response":{}}]"#;
    let url = dropping_server(Some(reply)).await;
    assert_eq!(redial_attempts(&url, 5).await, [1, 1, 1, 1, 1]);
}
