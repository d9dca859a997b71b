//! Hub nodes of a cluster as `switchboard serve` processes on loopback,
//! sharing one test nats-server. A node is handed out once its `/health`
//! says it is connected to NATS and has heard every other node started
//! with it (a port that accepts is not a cluster that answers).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::WAIT;

/// Upper bound of a node's start and of cluster-wide waits (several
/// processes, one NATS).
pub const CLUSTER_WAIT: Duration = Duration::from_secs(15);

/// How often a node beats in these tests, and when it is down.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// See [`HEARTBEAT`].
pub const DOWN_AFTER: Duration = Duration::from_millis(1500);

/// One `serve` process of a cluster.
pub struct Node {
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Its `cluster.node_id`.
    pub id: String,
    dir: TempDir,
}

/// What the nodes of one test share: NATS, subjects and stream, the rest of
/// the config.
#[derive(Clone)]
pub struct Layout {
    /// The nats-server.
    pub nats_url: String,
    /// Extra TOML put before `[cluster]` (e.g. `[history]`).
    pub extra: String,
    /// Extra keys of `[cluster]`.
    pub cluster_extra: String,
}

impl Layout {
    /// Nodes on `nats_url` with `[history] topics = ["feed:*"]`.
    pub fn new(nats_url: &str) -> Layout {
        Layout {
            nats_url: nats_url.to_owned(),
            extra: "[history]\ntopics = [\"feed:*\"]\n".to_owned(),
            cluster_extra: String::new(),
        }
    }

    fn config(&self, id: &str) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{extra}\n[cluster]\nnats_url = {url:?}\n\
             node_id = {id:?}\nsubject_prefix = \"sbtest\"\nstream = \"SBTEST\"\n\
             heartbeat = \"{beat}ms\"\ndown_after = \"{down}ms\"\n{cluster_extra}",
            extra = self.extra,
            url = self.nats_url,
            beat = HEARTBEAT.as_millis(),
            down = DOWN_AFTER.as_millis(),
            cluster_extra = self.cluster_extra,
        )
    }
}

impl Node {
    /// Starts node `id`; returns once it serves (not yet once it has peers).
    pub async fn spawn(layout: &Layout, id: &str) -> Node {
        let dir = tempfile::tempdir().expect("a node directory");
        let config = dir.path().join("node.toml");
        std::fs::write(&config, layout.config(id)).expect("config written");
        let log = std::fs::File::create(dir.path().join("node.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "switchboard=debug,async_nats=warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("serve starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("serve prints its address in time")
            .expect("stdout readable")
            .expect("serve printed a line");
        let started: Value = serde_json::from_str(&first).expect("a JSON line");
        Node {
            child,
            addr: started["listening"].as_str().expect("listening").to_owned(),
            id: id.to_owned(),
            dir,
        }
    }

    /// The V2 socket URL (with `vsn`).
    pub fn socket(&self) -> String {
        format!("ws://{}/socket/websocket?vsn=2.0.0", self.addr)
    }

    /// The socket URL the crate's client takes (it adds `vsn`).
    pub fn client_url(&self) -> String {
        format!("ws://{}/socket/websocket", self.addr)
    }

    /// The socket URL phoenix.js takes.
    pub fn phoenix_url(&self) -> String {
        format!("ws://{}/socket", self.addr)
    }

    /// `GET /health`, whatever its status.
    pub async fn health(&self) -> Value {
        http_json(&format!("http://{}/health", self.addr)).await
    }

    /// Waits until `/health` satisfies `check`; panics with the node's log
    /// tail after [`WAIT`].
    pub async fn wait_health(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + CLUSTER_WAIT;
        loop {
            let health = self.health().await;
            if check(&health) {
                return health;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "node {}: {what} not seen in time; last /health {health}\nlog:\n{}",
                    self.id,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: the node is gone at once, no close frame, no last word.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM: the node drains (1012 to its sockets) and exits.
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Waits (bounded) for the process to exit; its exit code.
    pub async fn exited(&mut self) -> Option<i32> {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the node exits in time")
            .ok()
            .and_then(|status| status.code())
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of the node's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }
}

/// Starts `count` nodes (`n1`, `n2`, …) and waits until each is connected
/// and has heard every other.
pub async fn start_cluster(layout: &Layout, count: usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    for n in 1..=count {
        nodes.push(Node::spawn(layout, &format!("n{n}")).await);
    }
    for node in &nodes {
        node.wait_health("a connected node with every peer", |health| {
            let cluster = &health["details"]["cluster"];
            cluster["state"] == "connected"
                && cluster["peers"]
                    .as_array()
                    .is_some_and(|p| p.len() == count - 1)
        })
        .await;
    }
    nodes
}

/// `node`'s address, for a proxy's upstream.
pub fn addr(node: &Node) -> std::net::SocketAddr {
    node.addr.parse().expect("a socket address")
}

/// A raw V2 client on `node`, joined to `topic`.
pub async fn joined(node: &Node, topic: &str) -> super::Client {
    let mut client = super::Client::connect(node.socket()).await;
    let reply = client.join(topic, "1").await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    client
}

/// Pushes `event` with `payload` on `topic` and waits for its reply,
/// passing over broadcasts on the way.
pub async fn push_acked(
    client: &mut super::Client,
    topic: &str,
    event: &str,
    payload: Value,
    r: &str,
) {
    client.send(Some("1"), Some(r), topic, event, payload).await;
    loop {
        let frame = client.recv().await;
        if frame[1] == r && frame[3] == "phx_reply" {
            assert_eq!(frame[4]["status"], "ok", "{frame}");
            return;
        }
    }
}

/// Pushes `event` `{"n": n}` for each `n` of `numbers`, each acked.
pub async fn push_numbers(
    client: &mut super::Client,
    topic: &str,
    event: &str,
    numbers: std::ops::RangeInclusive<u64>,
) {
    for n in numbers {
        push_acked(
            client,
            topic,
            event,
            serde_json::json!({"n": n}),
            &n.to_string(),
        )
        .await;
    }
}

/// A GET's JSON body, whatever its status.
pub async fn http_json(url: &str) -> Value {
    let mut response = tokio::time::timeout(WAIT, awc::Client::new().get(url).send())
        .await
        .expect("answered in time")
        .expect("the request goes through");
    response.json().limit(1 << 22).await.expect("a JSON body")
}
