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
