//! Bounded per-socket work (SEC-6): a flood of requests costs a worker no
//! more than the answers its socket can hold, a sender that does not wait
//! for its acks is slowed rather than closed, and the optional inbound rate
//! limit refuses or closes, counted.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::*;
use switchboard::config::OnExceed;
use switchboard::server::{CloseCause, Credentials, FrameProblem, HubService};
use switchboard::sink::CountingSink;
use tokio_tungstenite::tungstenite::Message;

/// A canary heartbeat slower than this (p99), while another socket on the
/// same worker floods it, means the flood stalls the worker. Unloaded, a
/// heartbeat takes about a millisecond.
const CANARY_P99_BOUND: Duration = Duration::from_millis(150);

/// Serves `service` on an HTTP server of ONE worker, so that every socket
/// shares it; returns the bound address.
fn one_worker(service: HubService) -> SocketAddr {
    let app = service.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(|cfg| app.configure(cfg))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    addr
}

fn status_request(n: u64) -> String {
    json!({"type": "request", "id": format!("s{n}"), "timestamp": 1,
        "payload": {"method": "status", "params": {}}})
    .to_string()
}

/// Writes `count` status requests to `/ingest` at `addr` as fast as the
/// socket takes them, reading nothing; on a thread of its own, so the
/// flood does not share the canary's thread. Returns how many went out
/// before the hub stopped taking them (or `deadline` passed).
fn flood_status(addr: SocketAddr, count: u64, deadline: Duration) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let url = format!("ws://{addr}/ingest");
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("flood");
            let end = tokio::time::Instant::now() + deadline;
            let mut sent = 0;
            while sent < count {
                let batch = async {
                    for n in sent..count.min(sent + 500) {
                        ws.feed(Message::text(status_request(n))).await?;
                    }
                    ws.flush().await
                };
                match tokio::time::timeout_at(end, batch).await {
                    Ok(Ok(())) => sent = count.min(sent + 500),
                    // The hub stopped reading (or closed): the flood is over.
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            sent
        })
    })
}

/// p99 of `samples`.
fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

#[actix_web::test]
async fn sec_6_a_status_flood_does_not_stall_a_canary_on_the_same_worker() {
    let service = HubService::builder(&test_config()).build().expect("hub");
    let addr = one_worker(service.clone());
    let mut canary = Client::connect(format!("ws://{addr}/socket/websocket?vsn=2.0.0")).await;
    let heartbeat = |n: u32| json!([null, n.to_string(), "phoenix", "heartbeat", {}]).to_string();
    canary.send_text(heartbeat(0)).await;
    canary.recv().await;

    let flood = flood_status(addr, 100_000, Duration::from_secs(4));
    let mut rtts = Vec::new();
    for n in 1..=300 {
        let sent = Instant::now();
        canary.send_text(heartbeat(n)).await;
        let reply = canary.recv().await;
        rtts.push(sent.elapsed());
        assert_eq!(reply[1], n.to_string(), "{reply}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent = flood.join().expect("flood thread");
    let p99 = p99(&mut rtts);
    println!("flood sent {sent} status requests; canary p99 {p99:?}");
    assert!(
        p99 <= CANARY_P99_BOUND,
        "canary p99 {p99:?} over {CANARY_P99_BOUND:?} while flooded"
    );
}

/// A hub whose sockets hold 16 frames, with a paused sink.
fn small_outbox_hub() -> (HubService, SocketAddr, Arc<CountingSink>) {
    let mut config = test_config();
    config.server.max_outbound_frames = 16;
    config.history.size = 8;
    config.history.max_replay = 8;
    config.history.max_bytes = 64 * 1024;
    let sink = CountingSink::new();
    sink.pause();
    let service = HubService::builder(&config)
        .credentials(Credentials::Open)
        .sink(Arc::new(sink.clone()))
        .build()
        .expect("hub");
    let addr = one_worker(service.clone());
    (service, addr, sink)
}

fn data(n: u64) -> String {
    json!({"type": "data", "id": format!("m{n}"), "timestamp": 1, "payload": {"n": n}}).to_string()
}

#[actix_web::test]
async fn sec_6_a_sender_without_a_window_is_throttled_not_closed() {
    const COUNT: u64 = 2_000;
    let (service, addr, sink) = small_outbox_hub();
    let client = Client::connect(format!("ws://{addr}/ingest")).await;
    let (mut write, mut read) = client.into_inner().split();
    // Writes everything at once, never waiting for an ack; reads them all
    // concurrently. Under drop_oldest most are evicted (nacked) while the
    // sink is paused: far more answers than the socket's 16 frames.
    let writer = actix_web::rt::spawn(async move {
        for n in 0..COUNT {
            write
                .feed(Message::text(data(n)))
                .await
                .expect("the hub reads everything");
        }
        write.flush().await.expect("flushed");
        write
    });
    let reader = actix_web::rt::spawn(async move {
        let mut answered = 0;
        while answered < COUNT {
            let next = tokio::time::timeout(Duration::from_secs(20), read.next()).await;
            match next.expect("answers keep coming") {
                Some(Ok(Message::Text(text))) => {
                    let answer: Value = serde_json::from_str(&text).expect("JSON");
                    match answer["type"].as_str() {
                        Some("ack" | "nack") => answered += 1,
                        Some("slow") => {}
                        other => panic!("unexpected {other:?}: {answer}"),
                    }
                }
                Some(Ok(Message::Close(frame))) => panic!("closed after {answered}: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("socket error after {answered}: {error}"),
                None => panic!("socket dropped after {answered}"),
            }
        }
        answered
    });
    // Let the answers owed pile up against the paused sink, then let it go.
    assert!(
        eventually(|| service
            .stats()
            .throttles(switchboard::server::Throttle::Owed)
            > 0)
        .await,
        "the socket stopped reading while it owed a full outbox"
    );
    sink.resume();
    let answered = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("every answer in time")
        .expect("reader");
    assert_eq!(answered, COUNT);
    let _write = writer.await.expect("writer");
    assert_eq!(service.stats().closes(CloseCause::SlowConsumer), 0);
}

/// A hub whose sockets may send 5 frames per second.
fn rate_limited_hub(on_exceed: OnExceed) -> (HubService, SocketAddr) {
    let mut config = test_config();
    config.server.inbound_rate.frames_per_second = 5;
    config.server.inbound_rate.on_exceed = on_exceed;
    let service = HubService::builder(&config).build().expect("hub");
    let addr = one_worker(service.clone());
    (service, addr)
}

#[actix_web::test]
async fn sec_6_frames_over_the_inbound_rate_are_refused_and_the_socket_lives() {
    let (service, addr) = rate_limited_hub(OnExceed::Refuse);
    let mut client = Client::connect(format!("ws://{addr}/socket/websocket?vsn=2.0.0")).await;
    for n in 0..20 {
        client.heartbeat(&n.to_string()).await;
    }
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(client.recv().await[4].clone());
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == error("rate_limited"))
        .count();
    assert_eq!(
        (
            statuses.iter().filter(|s| **s == ok(json!({}))).count(),
            refused
        ),
        (5, 15),
        "a second's burst passes, the rest is refused: {statuses:?}"
    );
    assert_eq!(service.stats().problems(FrameProblem::RateLimited), 15);
    // The bucket refills at 5 a second: the socket works again.
    tokio::time::sleep(Duration::from_millis(250)).await;
    client
        .send(None, Some("later"), "phoenix", "heartbeat", json!({}))
        .await;
    assert_eq!(client.recv().await[4], ok(json!({})));
}

#[actix_web::test]
async fn sec_6_an_ingest_sender_over_the_inbound_rate_is_closed_when_configured() {
    let (service, addr) = rate_limited_hub(OnExceed::Close);
    let mut client = Client::connect(format!("ws://{addr}/ingest")).await;
    for n in 0..20 {
        client.send_text(data(n)).await;
    }
    assert_eq!(client.expect_close().await, Some(1008));
    assert_eq!(service.stats().closes(CloseCause::RateLimited), 1);
    assert_eq!(service.stats().problems(FrameProblem::RateLimited), 1);
}

#[actix_web::test]
async fn sec_4_rejoins_with_replays_are_paced_not_closed() {
    const TOPICS: usize = 10;
    const KEPT: u64 = 300;
    let mut config = test_config();
    config.history.topics = vec!["room:feed:*".to_owned()];
    config.history.size = KEPT as usize;
    config.presence.rooms = false; // replays only, no presence frames
    let service = HubService::builder(&config).build().expect("hub");
    let addr = one_worker(service.clone());
    let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0");
    let topic = |n: usize| format!("room:feed:{n}");
    // Each topic's epoch, from a join that then leaves.
    let mut first = Client::connect(url.as_str()).await;
    let mut epochs = Vec::new();
    for n in 0..TOPICS {
        let jr = n.to_string();
        first
            .send(Some(&jr), Some(&jr), &topic(n), "phx_join", json!({}))
            .await;
        let reply = loop {
            let frame = first.recv().await;
            if frame[3] == "phx_reply" && frame[1] == jr.as_str() {
                break frame;
            }
        };
        epochs.push(reply[4]["response"]["epoch"].clone());
        let leave = json!({});
        first
            .send(Some(&jr), Some("leave"), &topic(n), "phx_leave", leave)
            .await;
    }
    for n in 0..TOPICS {
        for k in 1..=KEPT {
            service.broadcast(&topic(n), "news", &json!({ "k": k }));
        }
    }
    // Ten resumes from zero at once: 3,000 replayed frames, three times
    // the socket's outbox, for a client that reads them all.
    let mut late = Client::connect(url.as_str()).await;
    for (n, epoch) in epochs.iter().enumerate() {
        let resume = json!({"resume": {"sequence": 0, "epoch": epoch, "strict": false}});
        late.send(
            Some(&n.to_string()),
            Some(&n.to_string()),
            &topic(n),
            "phx_join",
            resume,
        )
        .await;
    }
    let (mut replies, mut replayed) = (0, 0);
    while replies < TOPICS || replayed < TOPICS as u64 * KEPT {
        let frame = late.recv().await;
        match frame[3].as_str() {
            Some("phx_reply") => {
                assert_eq!(frame[4]["status"], "ok", "{frame}");
                replies += 1;
            }
            Some("news") => replayed += 1,
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }
    assert_eq!(service.stats().closes(CloseCause::SlowConsumer), 0);
    assert!(
        service
            .stats()
            .throttles(switchboard::server::Throttle::Answers)
            > 0
    );
}
