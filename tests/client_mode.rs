//! Client mode (NET-12): a hub that pulls a remote hub's recoverable topic
//! into its own sink, through a link cut every 300 ms, stores every message
//! exactly once, and says so in `/health`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::fault_proxy::{cut_every, FaultProxy};
use support::*;
use switchboard::config::{Mode, OnFull};
use switchboard::server::HubService;
use switchboard::sink::CountingSink;

const TOPIC: &str = "room:feed:edge";
const COUNT: u64 = 10_000;

async fn health(addr: std::net::SocketAddr) -> Value {
    let url = format!("http://{addr}/health");
    let mut response = awc::Client::new().get(&url).send().await.expect("health");
    response.json().await.expect("JSON")
}

#[actix_web::test]
async fn net_12_a_client_mode_hub_stores_every_pulled_message_once_across_cuts() {
    // Upstream: a hub whose recoverable topic keeps enough to replay a cut.
    let mut upstream = test_config();
    upstream.history.topics = vec!["room:feed:*".to_owned()];
    upstream.history.size = 4000;
    upstream.history.max_replay = 2000;
    upstream.history.max_bytes = 8 * 1024 * 1024;
    upstream.server.max_outbound_frames = 8192;
    upstream.server.max_outbound_bytes = 16 * 1024 * 1024;
    let upstream = start_hub(&upstream);
    let proxy = Arc::new(FaultProxy::start(upstream.addr()));

    // Downstream: pulls through the proxy into its sink.
    let mut downstream = test_config();
    downstream.mode = Mode::Client;
    downstream.client.url = format!("ws://{}/socket/websocket", proxy.addr());
    downstream.client.topics = vec![TOPIC.to_owned()];
    downstream.client.reconnect.initial_interval = Duration::from_millis(50);
    downstream.client.reconnect.max_interval = Duration::from_millis(200);
    downstream.backpressure.on_full = OnFull::Block;
    let sink = CountingSink::new();
    let downstream = HubService::builder(&downstream)
        .sink(Arc::new(sink.clone()))
        .start()
        .expect("downstream starts");
    let service = upstream.service().clone();
    assert!(
        eventually(|| service.member_count(TOPIC) == 1).await,
        "joined upstream"
    );
    let report = health(downstream.addr()).await;
    assert_eq!(report["details"]["mode"], "client", "{report}");
    assert_eq!(
        report["details"]["client"]["remote_url"],
        json!(format!("ws://{}/socket/websocket", proxy.addr()))
    );
    assert_eq!(report["details"]["client"]["connected"], true, "{report}");
    assert_eq!(report["status"], "connected");

    let cutter = cut_every(proxy.clone(), Duration::from_millis(300));
    // 10,000 broadcasts at about 2,000 a second, so that a cut leaves the
    // puller well within what one resume replays.
    for n in 1..=COUNT {
        service.broadcast(TOPIC, "reading", &json!({ "n": n }));
        if n % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let stored_all = tokio::time::timeout(Duration::from_secs(60), async {
        while sink.stored() < COUNT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    cutter.abort();
    let cuts = proxy.accepted();
    eprintln!(
        "client mode: {} stored over {cuts} connections",
        sink.stored()
    );
    assert!(
        stored_all.is_ok(),
        "only {} of {COUNT} stored",
        sink.stored()
    );
    assert!(cuts >= 5, "the link was cut ({cuts} connections)");
    // Nothing more arrives: once each, none twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.stored(), COUNT, "every message exactly once");
}

/// A client-mode hub pulling `TOPIC` from `upstream` into `sink`, its
/// positions kept in `snapshot`.
fn puller(
    upstream: std::net::SocketAddr,
    snapshot: &std::path::Path,
    sink: &Arc<CountingSink>,
) -> switchboard::server::RunningHub {
    let mut config = test_config();
    config.mode = Mode::Client;
    config.client.url = format!("ws://{upstream}/socket/websocket");
    config.client.topics = vec![TOPIC.to_owned()];
    config.client.reconnect.initial_interval = Duration::from_millis(50);
    config.backpressure.on_full = OnFull::Block;
    config.snapshot.path = Some(snapshot.to_owned());
    config.snapshot.every = switchboard::config::SnapshotEvery::Publish;
    HubService::builder(&config)
        .sink(Arc::new(sink.clone()))
        .start()
        .expect("puller starts")
}

async fn stored_within(sink: &CountingSink, count: u64) {
    let stored = tokio::time::timeout(WAIT, async {
        while sink.stored() < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(stored.is_ok(), "only {} of {count} stored", sink.stored());
}

#[actix_web::test]
async fn net_12_a_restarted_client_mode_hub_resumes_where_its_sink_stood() {
    let mut upstream = test_config();
    upstream.history.topics = vec!["room:feed:*".to_owned()];
    upstream.history.size = 200;
    let upstream = start_hub(&upstream);
    let service = upstream.service().clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot = dir.path().join("positions.json");

    let first_sink = CountingSink::new();
    let first = puller(upstream.addr(), &snapshot, &first_sink);
    assert!(
        eventually(|| service.member_count(TOPIC) == 1).await,
        "joined"
    );
    for n in 1..=50 {
        service.broadcast(TOPIC, "reading", &json!({ "n": n }));
    }
    stored_within(&first_sink, 50).await;
    // The position the sink reached is on disk before the crash.
    let key = format!("pull:{TOPIC}");
    // Read as it is: a FileStore's load() would clear the hub's temp file.
    let on_disk = || {
        let text = std::fs::read_to_string(&snapshot).unwrap_or_default();
        serde_json::from_str::<switchboard::sequence::Snapshot>(&text)
            .is_ok_and(|stored| stored.delivered(&key) == 50)
    };
    // Each change is written and synced; a busy disk may take a while.
    let stored = tokio::time::timeout(Duration::from_secs(30), async {
        while !on_disk() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let on_file = std::fs::read_to_string(&snapshot);
    assert!(
        stored.is_ok(),
        "position 50 stored; the file holds {on_file:?}"
    );
    first.kill().await;
    assert!(
        eventually(|| service.member_count(TOPIC) == 0).await,
        "gone"
    );

    // Broadcasts while no puller runs; a new one resumes after 50.
    for n in 51..=80 {
        service.broadcast(TOPIC, "reading", &json!({ "n": n }));
    }
    let second_sink = CountingSink::new();
    let _second = puller(upstream.addr(), &snapshot, &second_sink);
    stored_within(&second_sink, 30).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        second_sink.stored(),
        30,
        "51..=80, each once, nothing before"
    );
}

/// An envelope v1 stream on 127.0.0.1: sends `m-1..=m-total` as `data`,
/// about 2,000 a second, at most `WINDOW` unacked per connection, and on
/// every new connection resends whatever is not acked yet.
struct EnvelopeStream {
    total: u64,
    acked: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    changed: tokio::sync::Notify,
}

const WINDOW: usize = 256;

impl EnvelopeStream {
    async fn start(total: u64) -> (Arc<EnvelopeStream>, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("addr");
        let stream = Arc::new(EnvelopeStream {
            total,
            acked: Default::default(),
            changed: tokio::sync::Notify::new(),
        });
        let serving = stream.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serving.clone().connection(tcp));
            }
        });
        (stream, addr)
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    async fn connection(self: Arc<Self>, tcp: tokio::net::TcpStream) {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let Ok(socket) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        let (mut tx, mut rx) = socket.split();
        let in_flight = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let writer = {
            let (stream, in_flight) = (self.clone(), in_flight.clone());
            async move {
                loop {
                    let changed = stream.changed.notified();
                    let next: Vec<u64> = {
                        let acked = stream.acked.lock().expect("lock");
                        let flight = in_flight.lock().expect("lock");
                        (1..=stream.total)
                            .filter(|n| !acked.contains(n) && !flight.contains(n))
                            .take(WINDOW.saturating_sub(flight.len()))
                            .collect()
                    };
                    for n in next {
                        let data = switchboard::protocol::envelope::Envelope::data(
                            format!("m-{n}"),
                            json!({ "n": n }),
                        );
                        in_flight.lock().expect("lock").insert(n);
                        if tx.send(Message::Text(data.encode())).await.is_err() {
                            return;
                        }
                        if n % 20 == 0 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    let _ = tokio::time::timeout(Duration::from_millis(50), changed).await;
                }
            }
        };
        let reader = async {
            while let Some(Ok(message)) = rx.next().await {
                let Message::Text(text) = message else {
                    continue; // pings are answered by tungstenite
                };
                let answer: Value = serde_json::from_str(&text).expect("JSON");
                let n: u64 = answer["id"]
                    .as_str()
                    .and_then(|id| id.strip_prefix("m-"))
                    .and_then(|n| n.parse().ok())
                    .expect("an id of ours");
                in_flight.lock().expect("lock").remove(&n);
                if answer["type"] == "ack" {
                    self.acked.lock().expect("lock").insert(n);
                }
                self.changed.notify_waiters();
            }
        };
        tokio::select! {
            () = writer => {}
            () = reader => {}
        }
    }
}

#[actix_web::test]
async fn net_12_an_envelope_stream_is_ingested_once_and_acked_only_once_stored() {
    const TOTAL: u64 = 10_000;
    let (upstream, addr) = EnvelopeStream::start(TOTAL).await;
    let proxy = Arc::new(FaultProxy::start(addr));
    let mut config = test_config();
    config.mode = Mode::Client;
    config.client.url = format!("ws://{}/stream", proxy.addr());
    config.client.protocol = switchboard::client::WireProtocol::Envelope;
    config.client.reconnect.initial_interval = Duration::from_millis(50);
    config.client.reconnect.max_interval = Duration::from_millis(200);
    config.backpressure.on_full = OnFull::Block;
    config.validate().expect("valid");
    let sink = CountingSink::new();
    let hub = HubService::builder(&config)
        .sink(Arc::new(sink.clone()))
        .start()
        .expect("puller starts");

    let cutter = cut_every(proxy.clone(), Duration::from_millis(300));
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            // Read the acks first: each was sent after its item was stored.
            let acked = upstream.acked() as u64;
            let stored = sink.stored();
            assert!(acked <= stored, "{acked} acked but only {stored} stored");
            if acked == TOTAL {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    cutter.abort();
    let connections = proxy.accepted();
    eprintln!(
        "envelope client mode: {} acked, {} stored over {connections} connections",
        upstream.acked(),
        sink.stored()
    );
    assert!(done.is_ok(), "only {} of {TOTAL} acked", upstream.acked());
    assert!(
        connections >= 5,
        "the link was cut ({connections} connections)"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.stored(), TOTAL, "every message exactly once");
    let report = health(hub.addr()).await;
    assert_eq!(report["details"]["mode"], "client", "{report}");
}
