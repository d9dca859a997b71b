//! PHX-C1..PHX-C12 of docs/conformance.md: the client's Phoenix lifecycle,
//! asserted on the wire against a scripted server (or the real hub).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::client::*;
use support::script_server::{JoinAnswer, ScriptServer};
use support::*;
use switchboard::client::{
    ClientAuth, ConnectEvent, ConnectionStatus, JoinError, PushError, TokenSource,
};

fn disconnected(event: &ConnectEvent) -> Option<String> {
    match event {
        ConnectEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    }
}

fn rejoined(event: &ConnectEvent) -> Option<String> {
    match event {
        ConnectEvent::Rejoined { topic, .. } => Some(topic.clone()),
        _ => None,
    }
}

#[actix_web::test]
async fn phx_c1_token_and_params_reevaluated_before_every_dial() {
    let mut server = ScriptServer::start().await;
    let dials = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(AtomicUsize::new(0));
    let mut config = fast_config(&server.url());
    let counter = dials.clone();
    config.params = Some(Arc::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        vec![
            ("dial".to_owned(), n.to_string()),
            ("vsn".to_owned(), "9".to_owned()),
        ]
    }));
    let issued = tokens.clone();
    config.auth = ClientAuth::Bearer(TokenSource::Provider {
        provider: Arc::new(move || {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move { Ok(format!("token-{n}")) })
        }),
        fallback: None,
    });
    let board = switchboard();
    let handle = open(&board, config).await;
    handle.join("room:a", json!({})).await.unwrap();
    server.drop_all();
    server.next("phx_join").await; // the first join
    server.next("phx_join").await; // the rejoin after the redial
    assert_eq!(dials.load(Ordering::SeqCst), 2, "params computed per dial");
    assert_eq!(
        tokens.load(Ordering::SeqCst),
        2,
        "token provider called per dial"
    );
    assert_eq!(server.connection_count(), 2);
    wait_connected(&handle).await;
}

#[actix_web::test]
async fn phx_c1_vsn_is_appended_to_the_url() {
    // The real hub refuses any vsn but 2.0.0 with 403: connecting proves it.
    let hub = start_hub(&test_config());
    let board = switchboard();
    let mut config = fast_config(&hub.socket_url());
    config.fail_first_connect = true;
    let handle = open(&board, config).await;
    assert_eq!(handle.status(), ConnectionStatus::Connected);
}

#[actix_web::test]
async fn phx_c2_refs_increase_and_pushes_carry_the_join_ref() {
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    handle.join("room:a", json!({})).await.unwrap();
    handle.push("room:a", "ping", json!({})).await.unwrap();
    handle.push("room:a", "ping", json!({})).await.unwrap();
    let join = server.next("phx_join").await.frame;
    assert_eq!(join[0], join[1], "a join's ref is its join_ref");
    let refs: Vec<u64> = server
        .seen()
        .iter()
        .filter(|seen| seen.event() != "heartbeat")
        .map(|seen| seen.frame[1].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        refs.windows(2).all(|w| w[0] < w[1]),
        "increasing decimal refs: {refs:?}"
    );
    for seen in server.seen().iter().filter(|seen| seen.event() == "ping") {
        assert_eq!(
            seen.frame[0], join[0],
            "every push carries the current join_ref"
        );
    }
}

#[actix_web::test]
async fn phx_c3_unanswered_heartbeat_drops_and_redials() {
    let server = ScriptServer::start().await;
    let board = switchboard();
    let config = fast_config(&server.url());
    let interval = config.heartbeat_interval;
    let handle = open(&board, config).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    server.answer_heartbeats(false);
    let silent_since = Instant::now();
    let reason = wait_for(&mut events, disconnected).await;
    assert_eq!(reason, "heartbeat timeout");
    assert!(silent_since.elapsed() <= interval * 2 + Duration::from_millis(100));
    server.answer_heartbeats(true);
    assert_eq!(wait_for(&mut events, rejoined).await, "room:a");
    assert_eq!(handle.heartbeat_timers(), 1, "no timer survives a close");
}

#[actix_web::test]
async fn phx_c4_unsolicited_1000_reconnects_explicit_close_does_not() {
    let server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    server.close_all(1000);
    assert!(wait_for(&mut events, disconnected).await.contains("1000"));
    assert_eq!(wait_for(&mut events, rejoined).await, "room:a");
    handle.close().await;
    wait_for(&mut events, |e| {
        matches!(e, ConnectEvent::Closed { .. }).then_some(())
    })
    .await;
    assert_eq!(handle.status(), ConnectionStatus::Closed);
    // No dial loop is left that could ever redial.
    assert_eq!(handle.dial_loops(), 0, "no redial after close");
    assert_eq!(
        server.connection_count(),
        2,
        "the first dial and the one after 1000"
    );
    assert_eq!(
        handle.push("room:a", "ping", json!({})).await,
        Err(PushError::Closed)
    );
}

#[actix_web::test]
async fn phx_c5_server_phx_close_closes_the_channel_without_rejoin() {
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    handle.join("room:b", json!({})).await.unwrap();
    let join = server.next("phx_join").await.frame;
    server.send(json!([join[0], join[0], "room:a", "phx_close", {}]));
    let deadline = Instant::now() + WAIT;
    loop {
        match handle.push("room:a", "ping", json!({})).await {
            Err(PushError::NotJoined { .. }) => break,
            Ok(_) if Instant::now() < deadline => tokio::task::yield_now().await,
            other => panic!("expected NotJoined, got {other:?}"),
        }
    }
    // After a reconnect every remaining topic is rejoined in one pass: once
    // room:b is back, a rejoin of room:a would already be on the wire.
    server.drop_all();
    assert_eq!(wait_for(&mut events, rejoined).await, "room:b");
    let rejoins: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.connection == 1 && s.event() == "phx_join")
        .map(|s| s.frame[2].clone())
        .collect();
    assert_eq!(
        rejoins,
        [json!("room:b")],
        "no rejoin of a topic the server closed"
    );
}

#[actix_web::test]
async fn phx_c6_pushes_wait_for_the_join_reply_and_keep_their_refs() {
    let mut server = ScriptServer::start().await;
    server.script_joins(&[JoinAnswer::OkAfter(Duration::from_millis(300))]);
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    wait_connected(&handle).await;
    let joining = {
        let handle = handle.clone();
        actix_web::rt::spawn(async move { handle.join("room:a", json!({})).await })
    };
    let join = server.next("phx_join").await;
    let mut pushes = Vec::new();
    for n in 0..3 {
        let handle = handle.clone();
        pushes.push(actix_web::rt::spawn(async move {
            handle.push("room:a", "ping", json!({"n": n})).await
        }));
        tokio::task::yield_now().await;
    }
    joining.await.unwrap().unwrap();
    for (n, push) in pushes.into_iter().enumerate() {
        assert_eq!(push.await.unwrap().unwrap().response, json!({"n": n}));
    }
    let seen: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.event() == "ping")
        .collect();
    assert_eq!(seen.len(), 3);
    for (n, push) in seen.iter().enumerate() {
        assert_eq!(push.frame[4], json!({"n": n}), "flushed in order");
        assert!(
            push.at >= join.at + Duration::from_millis(300),
            "nothing is sent on a topic before its join reply"
        );
    }
}

#[actix_web::test]
async fn phx_c7_push_timeout_then_late_reply_is_dropped() {
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let mut config = fast_config(&server.url());
    config.push_timeout = Duration::from_millis(200);
    let handle = open(&board, config).await;
    handle.join("room:a", json!({})).await.unwrap();
    server.answer_pushes(false);
    let started = Instant::now();
    let outcome = handle.push("room:a", "slow", json!({})).await;
    assert_eq!(
        outcome,
        Err(PushError::Timeout {
            after: Duration::from_millis(200)
        })
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(handle.pending_requests(), 0, "the pending entry is gone");
    let slow = server.next("slow").await.frame;
    server.send(json!([slow[0], slow[1], "room:a", "phx_reply", {"status": "ok", "response": {}}]));
    server.answer_pushes(true);
    let reply = handle
        .push("room:a", "ping", json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(
        reply.response,
        json!({"n": 1}),
        "the late reply answered nobody"
    );
}

#[actix_web::test]
async fn phx_c8_reconnect_rejoins_then_flushes_then_announces() {
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut events = handle.events();
    for topic in ["room:a", "room:b", "room:c"] {
        handle.join(topic, json!({})).await.unwrap();
    }
    server.answer_heartbeats(true);
    server.drop_all();
    wait_for(&mut events, disconnected).await;
    let buffered = handle.clone();
    let push = actix_web::rt::spawn(async move {
        buffered
            .push("room:b", "ping", json!({"buffered": true}))
            .await
    });
    let mut rejoins = Vec::new();
    while rejoins.len() < 3 {
        rejoins.push(wait_for(&mut events, rejoined).await);
    }
    rejoins.sort();
    assert_eq!(rejoins, ["room:a", "room:b", "room:c"], "every topic, once");
    push.await.unwrap().unwrap();
    let second: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.connection == 1)
        .collect();
    let joins: Vec<_> = second.iter().filter(|s| s.event() == "phx_join").collect();
    assert_eq!(joins.len(), 3, "exactly one join per topic per reconnect");
    let join_b = joins.iter().find(|s| s.frame[2] == "room:b").unwrap();
    let ping = second
        .iter()
        .find(|s| s.event() == "ping")
        .expect("flushed");
    assert!(ping.at >= join_b.at, "the join goes first");
    assert_eq!(
        ping.frame[0], join_b.frame[0],
        "flushed with the new join_ref"
    );
    let _ = server.next("phx_join").await;
}

#[actix_web::test]
async fn phx_c9_stale_join_ref_dropped_null_join_ref_passes() {
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut events = handle.events();
    let mut news = handle.incoming("room:a", Some("news"), 16);
    handle.join("room:a", json!({})).await.unwrap();
    let old = server.next("phx_join").await.frame[0].clone();
    server.drop_all();
    wait_for(&mut events, rejoined).await;
    server.send(json!([old, old, "room:a", "phx_close", {}]));
    server.send(json!([null, null, "room:a", "news", {"n": 1}]));
    let delivered = tokio::time::timeout(WAIT, news.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered.payload, json!({"n": 1}));
    let reply = handle.push("room:a", "ping", json!({})).await;
    assert!(
        reply.is_ok(),
        "the stale phx_close did not close the new join: {reply:?}"
    );
}

#[actix_web::test]
async fn phx_c10_rejoin_refusal_is_an_event_and_rejoins_with_backoff() {
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let mut config = fast_config(&server.url());
    config.join_timeout = Duration::from_millis(200);
    let handle = open(&board, config).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    server.next("phx_join").await;
    // The rejoin after a reconnect is refused, then goes unanswered.
    server.script_joins(&[JoinAnswer::Error, JoinAnswer::Silent]);
    server.drop_all();
    let refused = server.next("phx_join").await;
    assert_eq!(refused.connection, 1, "the rejoin after the reconnect");
    let event = wait_for(&mut events, |event| match event {
        ConnectEvent::JoinRefused { topic, reason, .. } => Some((topic.clone(), reason.clone())),
        _ => None,
    })
    .await;
    assert_eq!(event, ("room:a".to_owned(), "forbidden".to_owned()));
    let silent = server.next("phx_join").await;
    let gap = silent.at - refused.at;
    assert!(
        gap >= Duration::from_millis(800) && gap <= Duration::from_millis(1500),
        "first rejoin ~1 s: {gap:?}"
    );
    let leave = server.next("phx_leave").await;
    assert_eq!(leave.frame[0], silent.frame[0], "a timed-out join is left");
    let third = server.next("phx_join").await;
    let gap = third.at - silent.at;
    assert!(
        gap >= Duration::from_millis(1600),
        "then ~2 s after the timeout: {gap:?}"
    );
    let reply = handle
        .push("room:a", "ping", json!({"n": 3}))
        .await
        .unwrap();
    assert_eq!(reply.response, json!({"n": 3}));
}

#[actix_web::test]
async fn phx_c10_first_join_refusal_is_the_callers_error_and_never_retried() {
    let mut server = ScriptServer::start().await;
    server.script_joins(&[JoinAnswer::Error]);
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let refused = handle.join("room:no", json!({})).await;
    match refused {
        Err(JoinError::Refused { topic, reason, .. }) => {
            assert_eq!((topic.as_str(), reason.as_str()), ("room:no", "forbidden"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        handle.push("room:no", "ping", json!({})).await,
        Err(PushError::NotJoined { .. })
    ));
    // Another topic is joined and the socket drops: only that one rejoins.
    handle.join("room:yes", json!({})).await.unwrap();
    server.next("phx_join").await;
    server.next("phx_join").await;
    server.drop_all();
    let rejoin = server.next("phx_join").await;
    assert_eq!(
        (rejoin.connection, rejoin.frame[2].as_str()),
        (1, Some("room:yes"))
    );
    let joins_of_refused = server
        .seen()
        .iter()
        .filter(|seen| seen.event() == "phx_join" && seen.frame[2] == "room:no")
        .count();
    assert_eq!(
        joins_of_refused, 1,
        "the refused topic was never joined again"
    );
}

#[actix_web::test]
async fn phx_c10_a_refusal_after_the_caller_timed_out_is_announced_and_ends_the_topic() {
    let server = ScriptServer::start().await;
    server.script_joins(&[JoinAnswer::Silent, JoinAnswer::Error]);
    let board = switchboard();
    let mut config = fast_config(&server.url());
    config.join_timeout = Duration::from_millis(200);
    config.buffer_deadline = Duration::from_millis(100);
    let handle = open(&board, config).await;
    let mut events = handle.events();
    let first = handle.join("room:late", json!({})).await;
    assert!(matches!(first, Err(JoinError::Timeout { .. })), "{first:?}");
    // The retry after the timeout is refused: nobody waits, so it is an event.
    let reason = wait_for(&mut events, |event| match event {
        ConnectEvent::JoinRefused { topic, reason, .. } if topic == "room:late" => {
            Some(reason.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(reason, "forbidden");
    assert!(matches!(
        handle.push("room:late", "ping", json!({})).await,
        Err(PushError::NotJoined { .. })
    ));
}

#[actix_web::test]
async fn phx_c11_requests_in_flight_fail_at_once_on_disconnect() {
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let mut config = fast_config(&server.url());
    config.push_timeout = Duration::from_secs(10);
    let handle = open(&board, config).await;
    handle.join("room:a", json!({})).await.unwrap();
    server.answer_pushes(false);
    let waiting = handle.clone();
    let push = actix_web::rt::spawn(async move { waiting.push("room:a", "slow", json!({})).await });
    server.next("slow").await;
    let cut = Instant::now();
    server.drop_all();
    assert_eq!(push.await.unwrap(), Err(PushError::Disconnected));
    assert!(
        cut.elapsed() < Duration::from_secs(1),
        "failed at once, not after the timeout"
    );
    assert_eq!(handle.pending_requests(), 0);
}

#[actix_web::test]
async fn phx_c12_handlers_stay_registered_once_across_reconnects() {
    let server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut events = handle.events();
    let mut news = handle.incoming("room:a", None, 64);
    handle.join("room:a", json!({})).await.unwrap();
    for _ in 0..3 {
        server.drop_all();
        wait_for(&mut events, rejoined).await;
    }
    server.send(json!([null, null, "room:a", "news", {"once": true}]));
    server.send(json!([null, null, "room:a", "marker", {}]));
    let mut got: Vec<Value> = Vec::new();
    while let Ok(Some(incoming)) = tokio::time::timeout(WAIT, news.recv()).await {
        if incoming.event == "marker" {
            break;
        }
        got.push(incoming.payload.to_value());
    }
    assert_eq!(got, vec![json!({"once": true})], "delivered exactly once");
}

#[actix_web::test]
async fn client_answers_pings_and_reassembles_fragments() {
    let mut server = ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut news = handle.incoming("room:a", Some("news"), 4);
    handle.join("room:a", json!({})).await.unwrap();
    server.ping(b"hello");
    server.pong(b"hello").await;
    let body = "x".repeat(10_000);
    server.send_fragmented(json!([null, null, "room:a", "news", {"body": body}]), 1_000);
    let delivered = tokio::time::timeout(WAIT, news.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        delivered.payload.to_value()["body"].as_str().map(str::len),
        Some(10_000)
    );
}
