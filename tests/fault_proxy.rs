//! Self-test of the TCP fault proxy of `tests/support/fault_proxy.rs`,
//! against a small echo server.

mod support;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::fault_proxy::{Cut, FaultProxy};
use support::WAIT;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// How soon a cut must be seen by the client.
const PROMPT: Duration = Duration::from_secs(1);

/// Starts an echo server on 127.0.0.1:0 that first writes `greeting`.
async fn echo_server_with(greeting: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if stream.write_all(greeting).await.is_err() {
                    return;
                }
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// Starts an echo server on 127.0.0.1:0.
async fn echo_server() -> SocketAddr {
    echo_server_with(b"").await
}

async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connected")
}

async fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("read in time")
        .expect("read");
    buf
}

async fn echo(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
    assert_eq!(read_exact(stream, bytes.len()).await, bytes);
}

/// The client's next read, within [`PROMPT`]: data, EOF (`Ok(0)`) or error.
async fn next_read(stream: &mut TcpStream) -> io::Result<usize> {
    let mut buf = [0u8; 64];
    timeout(PROMPT, stream.read(&mut buf))
        .await
        .expect("the read ends promptly")
}

/// Whether a connection to the proxy is refused, reset or closed at once.
async fn turned_away(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return true;
    };
    // The write may still succeed (the RST can arrive after it).
    let _ = stream.write_all(b"knock").await;
    matches!(next_read(&mut stream).await, Ok(0) | Err(_))
}

async fn eventually_live(proxy: &FaultProxy, n: usize) {
    assert!(
        support::eventually(|| proxy.live_connections() == n).await,
        "expected {n} live connections, got {}",
        proxy.live_connections()
    );
}

#[tokio::test]
async fn bytes_pass_through_in_order() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut stream = connect(proxy.addr()).await;
    echo(&mut stream, b"hello").await;
    eventually_live(&proxy, 1).await;

    // Far more than one copy buffer, written and read concurrently.
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut read, mut write) = stream.split();
    let sending = async {
        write.write_all(&payload).await.expect("write payload");
    };
    let receiving = async {
        let mut back = vec![0u8; payload.len()];
        read.read_exact(&mut back).await.expect("read payload");
        back
    };
    let ((), back) = timeout(WAIT, async { tokio::join!(sending, receiving) })
        .await
        .expect("payload echoed in time");
    assert!(back == payload, "the payload came back altered");

    drop(stream);
    eventually_live(&proxy, 0).await;
}

#[tokio::test]
async fn cut_reset_resets_the_client() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut stream = connect(proxy.addr()).await;
    echo(&mut stream, b"before").await;

    proxy.cut_all(Cut::Reset);
    assert_eq!(proxy.live_connections(), 0);
    let read = next_read(&mut stream).await;
    assert!(
        matches!(&read, Err(error) if error.kind() == io::ErrorKind::ConnectionReset),
        "expected a reset, got {read:?}"
    );

    // New connections still work.
    let mut again = connect(proxy.addr()).await;
    echo(&mut again, b"after").await;
}

#[tokio::test]
async fn cut_fin_closes_the_client() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut stream = connect(proxy.addr()).await;
    echo(&mut stream, b"before").await;

    proxy.cut_all(Cut::Fin);
    assert_eq!(proxy.live_connections(), 0);
    let read = next_read(&mut stream).await;
    assert!(matches!(read, Ok(0)), "expected EOF, got {read:?}");
}

#[tokio::test]
async fn refuse_turns_new_connections_away_only() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut existing = connect(proxy.addr()).await;
    echo(&mut existing, b"one").await;

    proxy.refuse(true);
    let before = proxy.accepted();
    assert!(turned_away(proxy.addr()).await);
    assert!(turned_away(proxy.addr()).await);
    assert_eq!(proxy.accepted(), before + 2, "refused ones are counted");
    echo(&mut existing, b"still echoes").await;
    assert_eq!(proxy.live_connections(), 1);

    proxy.refuse(false);
    let mut fresh = connect(proxy.addr()).await;
    echo(&mut fresh, b"welcome back").await;
}

#[tokio::test]
async fn refuse_for_expires() {
    let proxy = FaultProxy::start(echo_server().await);
    proxy.refuse_for(Duration::from_millis(300));
    let start = Instant::now();
    assert!(turned_away(proxy.addr()).await);
    if let Some(left) = Duration::from_millis(400).checked_sub(start.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let mut stream = connect(proxy.addr()).await;
    echo(&mut stream, b"open again").await;
}

#[tokio::test]
async fn stall_holds_data_until_released() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut stream = connect(proxy.addr()).await;
    echo(&mut stream, b"warm up").await;

    proxy.stall(true);
    stream
        .write_all(b"ping")
        .await
        .expect("write while stalled");
    let mut buf = [0u8; 4];
    assert!(
        timeout(Duration::from_millis(200), stream.read_exact(&mut buf))
            .await
            .is_err(),
        "an echo arrived through a stalled proxy"
    );
    assert_eq!(proxy.live_connections(), 1, "a stall keeps sockets open");

    proxy.stall(false);
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("the echo arrives after the stall")
        .expect("read");
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn latency_delays_each_direction_and_keeps_order() {
    let proxy = FaultProxy::start(echo_server().await);
    let mut stream = connect(proxy.addr()).await;
    echo(&mut stream, b"warm up").await;

    let delay = Duration::from_millis(150);
    proxy.set_latency(delay);
    let start = Instant::now();
    echo(&mut stream, b"slow").await;
    let round_trip = start.elapsed();
    assert!(
        round_trip >= 2 * delay,
        "round trip {round_trip:?} through two delayed directions"
    );

    // Chunks written 10 ms apart: delayed each, in order, not cumulatively.
    let start = Instant::now();
    for part in [b"a", b"b", b"c", b"d", b"e"] {
        stream.write_all(part).await.expect("write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(read_exact(&mut stream, 5).await, b"abcde");
    let elapsed = start.elapsed();
    assert!(elapsed >= 2 * delay, "{elapsed:?}");
    assert!(
        elapsed < 5 * delay,
        "{elapsed:?}: the latency added up over chunks"
    );

    proxy.set_latency(Duration::ZERO);
    let start = Instant::now();
    echo(&mut stream, b"fast").await;
    assert!(start.elapsed() < delay, "latency back to zero");
}

#[tokio::test]
async fn accept_times_grow() {
    let proxy = FaultProxy::start(echo_server().await);
    assert_eq!(proxy.accepted(), 0);
    assert!(proxy.accept_times().is_empty());
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(proxy.addr()).await;
        echo(&mut stream, b"x").await;
        streams.push(stream);
    }
    assert_eq!(proxy.accepted(), 3);
    let times = proxy.accept_times();
    assert_eq!(times.len(), 3);
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
}

#[tokio::test]
async fn set_upstream_moves_new_connections() {
    let first = echo_server_with(b"1").await;
    let second = echo_server_with(b"2").await;
    let proxy = FaultProxy::start(first);
    let mut old = connect(proxy.addr()).await;
    assert_eq!(read_exact(&mut old, 1).await, b"1");

    proxy.set_upstream(second);
    let mut new = connect(proxy.addr()).await;
    assert_eq!(read_exact(&mut new, 1).await, b"2");
    echo(&mut old, b"old stays").await;
    echo(&mut new, b"new one").await;
}

#[tokio::test]
async fn unreachable_upstream_closes_the_client() {
    let gone = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    };
    let proxy = FaultProxy::start(gone);
    let mut stream = connect(proxy.addr()).await;
    let read = next_read(&mut stream).await;
    assert!(matches!(read, Ok(0) | Err(_)), "got {read:?}");
    eventually_live(&proxy, 0).await;
}

#[tokio::test]
async fn hundreds_of_connections() {
    const N: usize = 300;
    let proxy = FaultProxy::start(echo_server().await);
    let addr = proxy.addr();
    let mut tasks = Vec::with_capacity(N);
    for i in 0..N {
        tasks.push(tokio::spawn(async move {
            let mut stream = connect(addr).await;
            echo(&mut stream, format!("client {i}").as_bytes()).await;
            stream
        }));
    }
    let mut streams = Vec::with_capacity(N);
    for task in tasks {
        streams.push(task.await.expect("client task"));
    }
    assert_eq!(proxy.live_connections(), N);
    assert_eq!(proxy.accept_times().len(), N);

    proxy.cut_all(Cut::Reset);
    assert_eq!(proxy.live_connections(), 0);
    for stream in &mut streams {
        assert!(next_read(stream).await.is_err(), "every client is reset");
    }
}

#[tokio::test]
async fn drop_stops_the_proxy() {
    let proxy = FaultProxy::start(echo_server().await);
    let addr = proxy.addr();
    let mut stream = connect(addr).await;
    echo(&mut stream, b"alive").await;

    drop(proxy);
    let read = next_read(&mut stream).await;
    assert!(matches!(read, Ok(0) | Err(_)), "got {read:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
