//! The supervised client against the hub: join, push, reconnect, rejoin.

mod support;

use serde_json::json;
use support::client::*;
use support::*;
use switchboard::client::{ConnectEvent, ConnectionStatus, JoinError, PushError};
use switchboard::protocol::phoenix::ReplyStatus;

#[actix_web::test]
async fn join_push_and_reply() {
    let hub = start_hub(&test_config());
    let board = switchboard();
    let handle = open(&board, fast_config(&hub.socket_url())).await;
    let joined = handle.join("room:a", json!({})).await.unwrap();
    assert_eq!(joined.status, ReplyStatus::Ok);
    let reply = handle
        .push("room:a", "ping", json!({"n": 7}))
        .await
        .unwrap();
    assert_eq!(reply.response, json!({"n": 7}));
    assert_eq!(handle.status(), ConnectionStatus::Connected);
    let refused = handle.join("nope:1", json!({})).await;
    assert!(
        matches!(&refused, Err(JoinError::Refused { reason, .. }) if reason == "unmatched topic"),
        "{refused:?}"
    );
    assert_eq!(
        handle.push("room:never", "ping", json!({})).await,
        Err(PushError::NotJoined {
            topic: "room:never".into()
        })
    );
}

#[actix_web::test]
async fn reconnects_and_rejoins_after_hub_restart() {
    let first = start_hub(&test_config());
    let addr = first.addr();
    let board = switchboard();
    let handle = open(&board, fast_config(&first.socket_url())).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    first.shutdown().await;
    wait_for(&mut events, |e| {
        matches!(e, ConnectEvent::Disconnected { .. }).then_some(())
    })
    .await;
    let mut config = test_config();
    config.server.listen = addr.to_string();
    let second = start_hub(&config);
    let topic = wait_for(&mut events, |e| match e {
        ConnectEvent::Rejoined { topic, .. } => Some(topic.clone()),
        _ => None,
    })
    .await;
    assert_eq!(topic, "room:a");
    let reply = handle
        .push("room:a", "ping", json!({"after": "restart"}))
        .await
        .unwrap();
    assert_eq!(reply.response, json!({"after": "restart"}));
    assert_eq!(second.service().member_count("room:a"), 1);
}

#[actix_web::test]
async fn reconnect_to_rejoined_after_a_cut_with_no_downtime() {
    let server = support::script_server::ScriptServer::start().await;
    let board = switchboard();
    let handle = open(&board, fast_config(&server.url())).await;
    let mut events = handle.events();
    handle.join("room:a", json!({})).await.unwrap();
    let mut samples = Vec::new();
    for _ in 0..20 {
        // Stay up past `stable_after`, so each cut starts from a reset backoff.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let cut = std::time::Instant::now();
        server.drop_all();
        wait_for(&mut events, |e| {
            matches!(e, ConnectEvent::Rejoined { .. }).then_some(())
        })
        .await;
        samples.push(cut.elapsed());
    }
    samples.sort();
    // A figure for the record, not an assertion: speed is the benchmark's job.
    eprintln!(
        "cut -> rejoined over 20 cuts (initial backoff {:?}): p50 {:?}, max {:?}",
        fast_config("ws://x").reconnect.initial_interval,
        samples[10],
        samples[19]
    );
    assert_eq!(handle.status(), ConnectionStatus::Connected);
}

/// Fire-and-forget sends take the direct path while joined and the actor
/// path while not; across a cut and a rejoin they still arrive in the order
/// they were sent, none twice.
#[actix_web::test]
async fn sends_keep_their_order_across_the_direct_and_the_buffered_path() {
    use support::fault_proxy::{Cut, FaultProxy};
    let hub = start_hub(&test_config());
    let proxy = FaultProxy::start(hub.addr());
    let board = switchboard();
    let url = format!("ws://{}/socket/websocket", proxy.addr());
    let sender = open(&board, fast_config(&url)).await;
    let watcher = open(&board, fast_config(&hub.socket_url())).await;
    let mut seen = watcher.incoming("room:order", Some("n"), 10_000);
    watcher.join("room:order", json!({})).await.unwrap();
    sender.join("room:order", json!({})).await.unwrap();
    let mut events = sender.events();
    for n in 0..3000u64 {
        if n == 1000 {
            proxy.cut_all(Cut::Reset);
        }
        // While reconnecting a send is buffered (or, if the buffer is full,
        // refused): either way it is never reordered.
        let _ = sender.send("room:order", "n", json!({ "n": n })).await;
        if n == 1000 {
            wait_for(&mut events, |event| {
                matches!(event, ConnectEvent::Rejoined { .. }).then_some(())
            })
            .await;
        }
    }
    sender
        .send("room:order", "n", json!({ "n": "end" }))
        .await
        .unwrap();
    let mut received = Vec::new();
    loop {
        let push = tokio::time::timeout(WAIT, seen.recv())
            .await
            .unwrap()
            .unwrap();
        match push.payload.to_value()["n"].as_u64() {
            Some(n) => received.push(n),
            None => break,
        }
    }
    assert!(
        received.windows(2).all(|pair| pair[0] < pair[1]),
        "in order, none twice"
    );
    eprintln!("{} of 3000 sends arrived, in order", received.len());
    // What was on the wire when the connection was cut may be lost; every
    // send made after the rejoin arrives.
    let after: Vec<u64> = received.iter().copied().filter(|n| *n > 1000).collect();
    assert_eq!(after, (1001..3000).collect::<Vec<u64>>());
}
