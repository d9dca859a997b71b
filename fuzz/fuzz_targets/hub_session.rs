//! The hub's two WebSocket endpoints on arbitrary inbound bytes, end to end:
//! the HTTP upgrade, the frame guard, actix-ws's parser, the session actor
//! and the Phoenix or envelope v1 protocol behind it.
//!
//! One hub runs per fuzz process, on a thread of its own with its own actix
//! system, on a free loopback port. Each input is one connection:
//!
//! - byte 0, bit 0: the endpoint (0: `/socket/websocket?vsn=2.0.0`,
//!   1: `/ingest`);
//! - byte 0, bit 1: 0 sends the rest as it is (raw WebSocket bytes from the
//!   client, masked or not, whole or cut anywhere); 1 splits the rest at
//!   every 0xFF byte (never part of UTF-8 text) and sends each piece as one
//!   masked text frame, so the fuzzer reaches the protocols quickly;
//! - byte 0, bit 2 (framed only): each piece goes as two fragments, a text
//!   frame and its continuation;
//! - byte 0, bit 3 (framed only): a close frame follows the pieces.
//!
//! The connection is upgraded, the bytes written, the write side shut, and
//! everything the hub sends read until it closes. The hub must close within
//! `CLOSE_WITHIN`; every `CHECK_EVERY` inputs it must have freed every
//! connection slot and membership and still answer a Phoenix heartbeat on a
//! fresh socket. Any of these failing, or a panic on any of the hub's
//! threads, aborts the process: libFuzzer records the input as a crash.

#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use switchboard::config::Config;
use switchboard::server::{Credentials, HubService};

/// Longest a hub may take to close a socket whose peer has shut its write
/// side (its idle timeout is shorter).
const CLOSE_WITHIN: Duration = Duration::from_secs(10);
/// Inputs between two checks of the hub's health.
const CHECK_EVERY: u64 = 64;
/// Longest wait for each answer of a health check.
const CHECK_WITHIN: Duration = Duration::from_secs(5);

const PHOENIX_PATH: &str = "/socket/websocket?vsn=2.0.0";
const INGEST_PATH: &str = "/ingest";

struct Hub {
    addr: SocketAddr,
    service: HubService,
}

/// Small limits, so the fuzzer reaches every bound with small inputs.
fn config() -> Config {
    let mut config = Config::default();
    let server = &mut config.server;
    server.listen = "127.0.0.1:0".to_owned();
    server.max_frame_bytes = 1024;
    server.max_channels_per_socket = 4;
    server.max_outbound_frames = 64;
    server.max_outbound_bytes = 64 * 1024;
    server.idle_timeout = Duration::from_secs(5);
    config.history.topics = vec!["feed:*".to_owned()];
    config.history.size = 16;
    config.history.max_bytes = 16 * 1024;
    config.history.max_topics = 100;
    config.history.max_replay = 8;
    config.history.idle_ttl = Duration::from_secs(2);
    config.backpressure.queue_size = 8;
    config
}

/// The hub of this process, started on first use.
fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| {
        let (started, running) = mpsc::channel();
        thread::Builder::new()
            .name("hub".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let hub = HubService::builder(&config())
                        .credentials(Credentials::Open)
                        .start()
                        .expect("the hub starts");
                    started
                        .send(Hub {
                            addr: hub.addr(),
                            service: hub.service().clone(),
                        })
                        .expect("the fuzzer waits for the hub");
                    std::future::pending::<()>().await;
                });
                panic!("the hub's actix system stopped");
            })
            .expect("the hub's thread starts");
        running
            .recv_timeout(Duration::from_secs(30))
            .expect("the hub started")
    })
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// The framed mode: each 0xFF-separated piece of `rest` as a text message.
fn framed(rest: &[u8], fragmented: bool, close: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    for piece in rest.split(|&b| b == 0xff) {
        if fragmented {
            let (head, tail) = piece.split_at(piece.len() / 2);
            bytes.extend(client_frame(0x01, head));
            bytes.extend(client_frame(0x80, tail));
        } else {
            bytes.extend(client_frame(0x81, piece));
        }
    }
    if close {
        bytes.extend(client_frame(0x88, &1000u16.to_be_bytes()));
    }
    bytes
}

/// Opens a socket on `path` and reads the upgrade's answer; panics unless
/// it is a 101 (the hub refusing a well-formed upgrade is a failure).
fn upgrade(addr: SocketAddr, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect_timeout(&addr, CHECK_WITHIN).expect("connect to the hub");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.set_read_timeout(Some(CHECK_WITHIN)).expect("timeout");
    tcp.set_write_timeout(Some(CHECK_WITHIN)).expect("timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).expect("send the upgrade");
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte) {
            Ok(1) => response.push(byte[0]),
            // A signal (libFuzzer's timer) interrupted the read: read again.
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            other => panic!(
                "the hub did not answer an upgrade on {path} ({other:?}): {}",
                String::from_utf8_lossy(&response)
            ),
        }
        assert!(response.len() < 4096, "an upgrade answer without end");
    }
    let head = String::from_utf8_lossy(&response);
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "upgrade on {path} refused: {head}"
    );
    tcp
}

/// Reads until the hub closes the connection; panics past `CLOSE_WITHIN`.
fn read_to_close(tcp: &mut TcpStream) {
    let deadline = Instant::now() + CLOSE_WITHIN;
    let mut sink = [0u8; 16 * 1024];
    loop {
        match tcp.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return, // reset: closed too
        }
        assert!(
            Instant::now() < deadline,
            "the hub kept a socket open {CLOSE_WITHIN:?} after its peer stopped writing"
        );
    }
}

/// Waits until `what` of the hub reads 0.
fn settles(what: &str, read: impl Fn() -> usize) {
    let deadline = Instant::now() + CHECK_WITHIN;
    while read() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} {what} still held {CHECK_WITHIN:?} after every socket closed",
            read()
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Every socket is gone: no slot nor membership is left, and the hub still
/// answers a heartbeat on a fresh socket.
fn check_health(hub: &Hub) {
    settles("connection slots", || hub.service.connections());
    settles("topics with members", || hub.service.topic_count());
    let mut tcp = upgrade(hub.addr, PHOENIX_PATH);
    let heartbeat = br#"[null,"hb","phoenix","heartbeat",{}]"#;
    tcp.write_all(&client_frame(0x81, heartbeat))
        .expect("send a heartbeat");
    // The reply: one unmasked text frame, short enough for a 7-bit length.
    let mut header = [0u8; 2];
    tcp.read_exact(&mut header).expect("the heartbeat's reply");
    assert_eq!(header[0], 0x81, "the reply is one text frame");
    let mut reply = vec![0u8; usize::from(header[1] & 0x7f)];
    tcp.read_exact(&mut reply).expect("the heartbeat's reply");
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with(r#"[null,"hb","phoenix","phx_reply",{"#) && reply.contains(r#""ok""#),
        "unexpected heartbeat reply {reply}"
    );
    tcp.write_all(&client_frame(0x88, &1000u16.to_be_bytes()))
        .expect("send a close");
    // Without our FIN the hub would hold the connection up to actix-http's
    // client disconnect timeout (1 s) after its close frame.
    tcp.shutdown(Shutdown::Write).expect("shut the write side");
    read_to_close(&mut tcp);
}

fuzz_target!(|data: &[u8]| {
    static INPUTS: AtomicU64 = AtomicU64::new(0);
    let hub = hub();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let path = if mode & 1 == 0 {
        PHOENIX_PATH
    } else {
        INGEST_PATH
    };
    let bytes = if mode & 2 == 0 {
        rest.to_vec()
    } else {
        framed(rest, mode & 4 != 0, mode & 8 != 0)
    };

    let mut tcp = upgrade(hub.addr, path);
    // The hub may close first (a refused frame): the rest is then not taken.
    let _ = tcp.write_all(&bytes);
    let _ = tcp.shutdown(Shutdown::Write);
    read_to_close(&mut tcp);
    drop(tcp);

    let done = INPUTS.fetch_add(1, Ordering::Relaxed);
    if done.is_multiple_of(CHECK_EVERY) {
        check_health(hub);
    }
});
