//! The dashboard (`server.dashboard`, `serve --dashboard`; SEC-7): off unless
//! enabled; the page served to anyone, its figures behind the admin token;
//! in headless Chromium it shows what `/health` says while phoenix.js
//! clients come and go; and twenty viewers cost one snapshot a second and a
//! bounded number of bytes.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::peers::{chromium_path, node_ready, skip_or_fail, Peer, PhoenixPeer};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

/// One HTTP/1.1 answer, and how many bytes it took on the wire.
struct Reply {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
    bytes: usize,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A keep-alive HTTP/1.1 connection that counts every byte it reads.
struct Viewer {
    stream: BufReader<TcpStream>,
}

impl Viewer {
    async fn connect(addr: SocketAddr) -> Viewer {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connects in time")
            .expect("connects");
        Viewer {
            stream: BufReader::new(stream),
        }
    }

    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        tokio::time::timeout(WAIT, self.exchange(path, headers))
            .await
            .expect("an answer in time")
    }

    async fn exchange(&mut self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("sent");
        let (mut status, mut length, mut etag, mut bytes) = (0, 0, None, 0);
        loop {
            let mut line = String::new();
            bytes += self
                .stream
                .read_line(&mut line)
                .await
                .expect("a header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(code) = line.strip_prefix("HTTP/1.1 ") {
                status = code[..3].parse().expect("a status");
            } else if let Some((name, value)) = line.split_once(": ") {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().expect("a length"),
                    "etag" => etag = Some(value.to_owned()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.expect("the body");
        Reply {
            status,
            etag,
            body,
            bytes: bytes + length,
        }
    }
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    Viewer::connect(addr).await.get(path, headers).await
}

#[actix_web::test]
async fn the_dashboard_is_off_unless_enabled_and_its_figures_need_the_admin_token() {
    let plain = start_hub(&test_config());
    for path in ["/dashboard", "/dashboard/state"] {
        assert_eq!(get(plain.addr(), path, &[]).await.status, 404, "{path}");
    }

    let mut config = test_config();
    config.server.dashboard = Some("/ops/board/".to_owned());
    switchboard::install_prometheus_recorder();
    let hub = switchboard::server::HubService::builder(&config)
        .admin_token("ops-secret")
        .start()
        .expect("hub starts");
    let addr = hub.addr();
    for path in ["/ops/board", "/ops/board/"] {
        let page = get(addr, path, &[]).await;
        assert_eq!(page.status, 200, "the page holds no figures: {path}");
        let html = String::from_utf8_lossy(&page.body);
        assert!(html.contains(r#"data-state="/ops/board/state""#), "{html}");
        assert!(html.contains(r#"src="/ops/board/app.js""#), "{html}");
        let tag = page.etag.expect("a tag");
        let again = get(addr, path, &[("If-None-Match", &tag)]).await;
        assert_eq!((again.status, again.body.len()), (304, 0));
    }
    for asset in ["app.js", "app.css"] {
        assert_eq!(
            get(addr, &format!("/ops/board/{asset}"), &[]).await.status,
            200
        );
    }
    assert_eq!(get(addr, "/ops/board/state", &[]).await.status, 401);
    let wrong = [("Authorization", "Bearer guess")];
    assert_eq!(get(addr, "/ops/board/state", &wrong).await.status, 401);
    let admin = [("Authorization", "Bearer ops-secret")];
    let state = get(addr, "/ops/board/state", &admin).await;
    assert_eq!(state.status, 200);
    let figures = state.json();
    assert_eq!(figures["status"], "serving");
    assert_eq!(figures["connections"]["now"], 0);
    // Unchanged within the interval: 304, no body.
    let tag = state.etag.expect("a tag");
    let with_tag = [admin[0], ("If-None-Match", &tag)];
    let unchanged = get(addr, "/ops/board/state", &with_tag).await;
    assert_eq!((unchanged.status, unchanged.body.len()), (304, 0));
    // A client shows within a second or so.
    let _client = Client::connect(format!("{}?vsn=2.0.0", hub.socket_url())).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let state = get(addr, "/ops/board/state", &admin).await;
        if state.status == 200 && state.json()["connections"]["now"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed the client"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn the_dashboard_in_chromium_shows_what_health_says_as_phoenix_js_clients_come_and_go() {
    let test = "the_dashboard_in_chromium_shows_what_health_says_as_phoenix_js_clients_come_and_go";
    if !node_ready(test) {
        return;
    }
    let Some(chromium) = chromium_path() else {
        let why = Peer::Chromium.missing().unwrap_or_default();
        skip_or_fail(test, Peer::Chromium, &why);
        return;
    };
    let mut config = test_config();
    config.server.dashboard = Some("/dashboard".to_owned());
    // The default rooms, as `serve` has them: members tracked in presence.
    let hub = switchboard::server::HubService::builder(&config)
        .start()
        .expect("hub starts");
    let out = std::env::temp_dir().join("switchboard-dashboard");
    std::fs::create_dir_all(&out).expect("a screenshot folder");
    let (chromium, out_arg) = (chromium.to_string_lossy(), out.to_string_lossy());
    let extra = [
        "--dashboard",
        "/dashboard",
        "--chromium",
        &chromium,
        "--out",
        &out_arg,
    ];
    let result = PhoenixPeer::dashboard_browser(&format!("http://{}", hub.addr()), &extra)
        .result()
        .await;
    assert_eq!(result["busy"]["connections"], 5, "{result}");
    assert_eq!(result["busy"]["delivered"], 50, "{result}");
    assert_eq!(result["after"]["connections"], 3, "{result}");
    for shot in result["screenshots"].as_array().expect("screenshots") {
        let path = shot.as_str().expect("a path");
        let png = std::fs::read(path).expect("the screenshot");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{path}");
        println!("screenshot: {path}");
    }
}

/// `serve --dashboard` on a free port: the child and the line it printed.
async fn serve_with_dashboard() -> (tokio::process::Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--dashboard", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT * 6, lines.next_line())
        .await
        .expect("serve prints in time")
        .expect("readable")
        .expect("a line");
    (child, serde_json::from_str(&line).expect("JSON"))
}

/// `switchboard_dashboard_snapshots_total` in the hub's `/metrics`.
async fn snapshots_counted(addr: SocketAddr) -> u64 {
    let metrics = get(addr, "/metrics", &[]).await;
    String::from_utf8_lossy(&metrics.body)
        .lines()
        .find_map(|line| line.strip_prefix("switchboard_dashboard_snapshots_total "))
        .map_or(0, |count| count.trim().parse().expect("a count"))
}

/// Twenty viewers polling once a second for `SECONDS` cost one snapshot per
/// second and under `BYTES_PER_SECOND`; a burst of 200 viewers at once
/// gets at most one interval's budget of bodies per snapshot.
#[actix_web::test]
async fn twenty_dashboards_cost_one_snapshot_a_second_and_bounded_bytes() {
    const VIEWERS: usize = 20;
    const SECONDS: u64 = 6;
    /// The bound for 20 viewers: 20 × 8 KiB a second.
    const BYTES_PER_SECOND: f64 = 20.0 * 8192.0;
    let (_child, started) = serve_with_dashboard().await;
    let dashboard = started["dashboard"].as_str().expect("the dashboard's URL");
    let addr: SocketAddr = started["listening"]
        .as_str()
        .expect("an address")
        .parse()
        .unwrap();
    assert_eq!(dashboard, format!("http://{addr}/dashboard"));
    // Something to show: ten sockets on two topics.
    let mut clients = Vec::new();
    for n in 0..10 {
        let mut client =
            Client::connect(format!("{}?vsn=2.0.0", started["socket"].as_str().unwrap())).await;
        client
            .join(if n % 2 == 0 { "room:a" } else { "room:b" }, "1")
            .await;
        clients.push(client);
    }

    let before = snapshots_counted(addr).await;
    let start = Instant::now();
    let viewers = (0..VIEWERS).map(|n| async move {
        let mut viewer = Viewer::connect(addr).await;
        // Spread over the second, as real viewers are.
        tokio::time::sleep(Duration::from_millis(50 * n as u64)).await;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let (mut etag, mut bytes, mut statuses) = (None::<String>, 0, Vec::new());
        let mut last = Value::Null;
        for _ in 0..SECONDS {
            tick.tick().await;
            let headers: Vec<(&str, &str)> =
                etag.iter().map(|t| ("If-None-Match", t.as_str())).collect();
            let reply = viewer.get("/dashboard/state", &headers).await;
            bytes += reply.bytes;
            statuses.push(reply.status);
            if reply.status == 200 {
                last = reply.json();
                etag = reply.etag;
            }
        }
        (bytes, statuses, last)
    });
    let seen = futures_util::future::join_all(viewers).await;
    let elapsed = start.elapsed().as_secs_f64();
    let snapshots = snapshots_counted(addr).await - before;

    let bytes: usize = seen.iter().map(|(bytes, _, _)| bytes).sum();
    let rate = bytes as f64 / elapsed;
    let statuses: Vec<u16> = seen
        .iter()
        .flat_map(|(_, s, _)| s.iter().copied())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 304),
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), VIEWERS * SECONDS as usize);
    assert!(
        snapshots as f64 <= elapsed.ceil() + 1.0,
        "{snapshots} snapshots in {elapsed:.1} s"
    );
    assert!(
        rate < BYTES_PER_SECOND,
        "{rate:.0} bytes/s to {VIEWERS} viewers"
    );
    let last = &seen[0].2;
    assert_eq!(last["connections"]["now"], 10, "{last}");
    assert_eq!(last["topics"]["count"], 2, "{last}");
    let body = serde_json::to_vec(last).unwrap().len();
    println!(
        "{VIEWERS} viewers for {elapsed:.1} s: {snapshots} snapshots, {rate:.0} bytes/s \
         (bodies of about {body} bytes; {} of {} answers were 304)",
        statuses.iter().filter(|s| **s == 304).count(),
        statuses.len()
    );

    // A burst of 200 viewers at once: what was left of the current
    // snapshot's budget, and one budget per snapshot taken meanwhile; the
    // rest are told to come back (429).
    let budget = last["dashboard"]["max_bodies_per_interval"]
        .as_u64()
        .expect("a budget");
    let before = snapshots_counted(addr).await;
    let start = Instant::now();
    let burst = (0..200).map(|_| async move { get(addr, "/dashboard/state", &[]).await.status });
    let statuses = futures_util::future::join_all(burst).await;
    let elapsed = start.elapsed().as_secs_f64();
    let snapshots = snapshots_counted(addr).await - before;
    let bodies = statuses.iter().filter(|s| **s == 200).count() as u64;
    let busy = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(bodies + busy, 200, "{statuses:?}");
    assert!(
        snapshots as f64 <= elapsed.ceil() + 1.0,
        "{snapshots} snapshots in {elapsed:.1} s"
    );
    assert!(
        bodies <= budget * (snapshots + 1),
        "{bodies} bodies, {snapshots} snapshots"
    );
    if elapsed < 1.0 {
        assert!(busy > 0, "{bodies} bodies within a second");
    }
    println!(
        "a burst of 200 in {elapsed:.2} s: {bodies} bodies, {busy} told 429, {snapshots} snapshots"
    );
}
