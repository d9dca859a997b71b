//! Limits before the upgrade (SEC-5): header sizes answered with a
//! consistent 431 on every route, and connections that never upgrade
//! bounded in number and in time.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;
use switchboard::server::{Refusal, RunningHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Writes `request` on `stream`; returns the status code of the answer.
async fn request_status(stream: &mut TcpStream, request: &str) -> u16 {
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = [0u8; 12];
    tokio::time::timeout(WAIT, stream.read_exact(&mut head))
        .await
        .expect("an answer in time")
        .expect("a status line");
    let line = String::from_utf8_lossy(&head);
    line[9..12]
        .parse()
        .unwrap_or_else(|_| panic!("status line: {line}"))
}

/// Sends a GET of `path` with one header of `header_bytes` bytes; returns
/// the status code of the answer.
async fn status_with_header(addr: SocketAddr, path: &str, header_bytes: usize) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         X-Filler: {}\r\n\r\n",
        "f".repeat(header_bytes)
    );
    request_status(&mut stream, &request).await
}

#[actix_web::test]
async fn sec_5_request_headers_past_the_cap_get_431_on_every_route() {
    let hub = start_hub_with_credentials(&test_config(), bearer("secret"));
    let addr = hub.addr();
    for path in [
        "/socket/websocket?vsn=2.0.0",
        "/ingest",
        "/health",
        "/metrics",
    ] {
        // Within the cap: judged by credentials (401) or served (200).
        let within = status_with_header(addr, path, 8 * 1024).await;
        assert!(within == 401 || within == 200, "{path}: {within}");
        // Past the cap, whatever the size actix-web would still buffer.
        for size in [17 * 1024, 64 * 1024, 120 * 1024] {
            assert_eq!(
                status_with_header(addr, path, size).await,
                431,
                "{path} with {size} bytes of header"
            );
        }
    }
    let refused = hub.service().stats().refusals(Refusal::HeadersTooLarge);
    assert_eq!(refused, 12);
}

/// Whether the hub shut `stream` (end of stream or reset) within `within`.
async fn shut_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 64];
    match tokio::time::timeout(within, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("an answer to a connection that sent nothing"),
        Err(_) => false,
    }
}

fn pending_hub(limit: usize, timeout: Duration) -> RunningHub {
    let mut config = test_config();
    config.server.max_pending_upgrades = limit;
    config.server.upgrade_timeout = timeout;
    start_hub(&config)
}

#[actix_web::test]
async fn sec_5_connections_that_never_upgrade_are_bounded_in_number_and_time() {
    let hub = pending_hub(4, Duration::from_secs(3));
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(hub.addr()).await.expect("connect"));
    }
    // Well before the upgrade timeout: exactly the limit are still open.
    let mut still_open = Vec::new();
    for mut stream in idle {
        if !shut_within(&mut stream, Duration::from_millis(150)).await {
            still_open.push(stream);
        }
    }
    assert_eq!(still_open.len(), 4, "the pending limit holds");
    assert_eq!(hub.service().stats().refusals(Refusal::PendingUpgrades), 4);
    // An upgraded socket does not count: one upgrades while four are idle.
    // (Its connection is the fifth pending one only until it upgrades, so
    // one idle connection has to go first.)
    drop(still_open.pop());
    // The hub frees that place once it read the end of the dropped one.
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut socket, _) = loop {
        match tokio_tungstenite::connect_async(v2_url(&hub)).await {
            Ok(upgraded) => break upgraded,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(error) => panic!("no upgrade while four are idle: {error}"),
        }
    };
    let join = r#"["1","1","room:lobby","phx_join",{}]"#;
    futures_util::SinkExt::send(&mut socket, Message::text(join))
        .await
        .expect("join");
    let reply = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut socket)).await;
    assert!(matches!(reply, Ok(Some(Ok(Message::Text(_))))), "{reply:?}");
    // Past the upgrade timeout the idle ones are gone too.
    for mut stream in still_open {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
        assert!(
            read.is_ok(),
            "an idle connection outlived the upgrade timeout"
        );
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    // And every place is free again.
    let mut more = Vec::new();
    for _ in 0..4 {
        more.push(TcpStream::connect(hub.addr()).await.expect("connect"));
    }
    for stream in &mut more {
        assert!(!shut_within(stream, Duration::from_millis(300)).await);
    }
}

#[actix_web::test]
async fn sec_5_connections_that_sent_a_request_no_longer_count_as_pending() {
    let hub = pending_hub(4, Duration::from_secs(3));
    // Eight keep-alive connections, each past its first request: none of
    // them holds a pending place, so sockets still upgrade.
    let mut kept = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(hub.addr()).await.expect("connect");
        let request = format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", hub.addr());
        assert_eq!(request_status(&mut stream, &request).await, 200);
        kept.push(stream);
    }
    let mut socket = Client::to(&hub).await;
    socket.join("room:lobby", "1").await;
    assert_eq!(hub.service().stats().refusals(Refusal::PendingUpgrades), 0);
}

#[actix_web::test]
async fn sec_5_headers_past_the_cap_get_431_on_routes_the_hub_does_not_serve() {
    let hub = start_hub(&test_config());
    assert_eq!(
        status_with_header(hub.addr(), "/nowhere", 20 * 1024).await,
        431
    );
    assert_eq!(status_with_header(hub.addr(), "/nowhere", 1024).await, 404);
}
