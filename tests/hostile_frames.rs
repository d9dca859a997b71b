//! A peer that announces a frame far larger than the limit and streams it:
//! the hub refuses it at the header (1009) and keeps none of it, on both
//! WebSocket endpoints (SEC-1).

mod support;

use std::time::{Duration, Instant};

use support::*;
use switchboard::server::{CloseCause, RunningHub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Resident memory of this process (the hub runs in it), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Streams up to 64 MiB of a frame's payload into `write` until the peer
/// stops taking it; answers how much went and the peak growth of resident
/// memory over `before` meanwhile.
async fn stream_payload(mut write: tokio::net::tcp::OwnedWriteHalf, before: u64) -> (u64, u64) {
    let chunk = vec![b'x'; 64 * 1024];
    let (mut sent, mut peak) = (0u64, 0u64);
    while sent < 64 << 20 {
        match tokio::time::timeout(Duration::from_secs(2), write.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len() as u64,
            _ => break, // refused or stalled: the peer stopped reading
        }
        peak = peak.max(resident_bytes().saturating_sub(before));
    }
    (sent, peak)
}

/// Upgrades a raw TCP connection to `path` by hand; answers the socket
/// once the 101 is read.
async fn raw_upgrade(hub: &RunningHub, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(hub.addr()).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        hub.addr()
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.expect("read response");
        response.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    tcp
}

/// Announces a 2^40-byte frame (its first header byte `first`: 0x81 text,
/// 0x89 ping) on `path`, streams up to 64 MiB of it,
/// and answers the close code the hub sent, how much it streamed, and the
/// peak growth of resident memory meanwhile.
async fn announce_huge_frame(hub: &RunningHub, path: &str, first: u8) -> (Option<u16>, u64, u64) {
    let mut tcp = raw_upgrade(hub, path).await;
    let before = resident_bytes();
    let mut header = vec![first, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[7, 7, 7, 7]);
    tcp.write_all(&header).await.expect("header");
    let (mut read, write) = tcp.into_split();
    let streamer = tokio::spawn(stream_payload(write, before));
    // The close frame: [0x88, len, code_hi, code_lo, ...].
    let mut close = [0u8; 4];
    let code = tokio::time::timeout(WAIT, read.read_exact(&mut close))
        .await
        .ok()
        .and_then(Result::ok)
        .filter(|_| close[0] == 0x88)
        .map(|_| u16::from_be_bytes([close[2], close[3]]));
    drop(read);
    let (sent, grown) = streamer.await.expect("streamer");
    (code, sent, grown)
}

#[actix_web::test]
async fn sec_1_a_huge_announced_frame_closes_1009_at_its_header_on_both_endpoints() {
    let mut config = test_config();
    config.server.max_frame_bytes = 64 * 1024;
    let hub = start_hub(&config);
    let cases = ["/socket/websocket?vsn=2.0.0", "/ingest"]
        .into_iter()
        .flat_map(|path| [(path, 0x81u8), (path, 0x89u8)]);
    for (round, (path, first)) in cases.enumerate() {
        let started = Instant::now();
        let (code, sent, grown) = announce_huge_frame(&hub, path, first).await;
        eprintln!(
            "{path} ({first:#x}): close {code:?} after {:.0} ms, {} KiB streamed, resident +{} KiB",
            started.elapsed().as_secs_f64() * 1000.0,
            sent / 1024,
            grown / 1024
        );
        assert_eq!(code, Some(1009), "{path}: refused with 1009");
        assert!(
            grown < 16 << 20,
            "{path}: resident memory grew {} MiB",
            grown >> 20
        );
        let closes = hub.service().stats().closes(CloseCause::FrameTooLarge);
        assert_eq!(closes, round as u64 + 1, "{path}: counted");
    }
}

/// A server that upgrades one client by hand, announces a 2^40-byte frame
/// and streams up to 64 MiB of it; answers the close code the client sent
/// and the peak growth of resident memory meanwhile.
async fn hostile_server(listener: tokio::net::TcpListener, first: u8) -> (Option<u16>, u64) {
    let (mut tcp, _) = listener.accept().await.expect("accept");
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.expect("read request");
        request.push(byte[0]);
    }
    let request = String::from_utf8_lossy(&request).to_string();
    let key = request
        .lines()
        .find_map(|line| line.strip_prefix("sec-websocket-key: "))
        .or_else(|| {
            request
                .lines()
                .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
        })
        .expect("a key")
        .trim()
        .to_owned();
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(response.as_bytes()).await.expect("101");
    let before = resident_bytes();
    let mut header = vec![first, 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    tcp.write_all(&header).await.expect("header");
    let (mut read, write) = tcp.into_split();
    let streamer = tokio::spawn(stream_payload(write, before));
    // The client's close frame is masked: [0x88, 0x80 | len, mask(4), code(2) ^ mask].
    let mut close = [0u8; 8];
    let code = tokio::time::timeout(WAIT, read.read_exact(&mut close))
        .await
        .ok()
        .and_then(Result::ok)
        .filter(|_| close[0] == 0x88)
        .map(|_| u16::from_be_bytes([close[6] ^ close[2], close[7] ^ close[3]]));
    drop(read);
    (code, streamer.await.expect("streamer").1)
}

#[actix_web::test]
async fn sec_1_the_client_refuses_a_huge_announced_frame_at_its_header() {
    for first in [0x81u8, 0x89] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "ws://{}/socket/websocket",
            listener.local_addr().expect("addr")
        );
        let server = tokio::spawn(hostile_server(listener, first));
        let board = support::client::switchboard();
        let mut config = support::client::fast_config(&url);
        config.max_frame_bytes = 64 * 1024;
        let connection = support::client::open(&board, config).await;
        let (code, grown) = tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("in time")
            .expect("server");
        eprintln!(
            "({first:#x}) client closed with {code:?}; resident +{} KiB",
            grown / 1024
        );
        assert_eq!(code, Some(1009), "{first:#x}: the client closes with 1009");
        assert!(grown < 16 << 20, "resident memory grew {} MiB", grown >> 20);
        connection.close().await;
    }
}
