//! Running the third-party peers under `tests/peers/` (the official
//! phoenix.js client) from Rust tests.
//!
//! Without `node` (or without `npm ci` having run in tests/peers) the tests
//! say so loudly and skip; under `CI=true` they fail instead.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Upper bound of one peer run.
pub const PEER_WAIT: Duration = Duration::from_secs(30);

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Whether node and the peers' packages are here. Panics under `CI=true`
/// when they are not; otherwise prints why the test is skipped.
pub fn node_ready(test: &str) -> bool {
    let missing = if !on_path("node") {
        Some("`node` is not on PATH")
    } else if !peers_dir().join("node_modules/phoenix").is_dir() {
        Some("tests/peers/node_modules is missing: run `npm ci` in tests/peers")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {why} (CI=true: real peers are required)")
        }
        Some(why) => {
            eprintln!("\n*** SKIPPED {test}: {why} ***\n");
            false
        }
    }
}

/// A running phoenix.js scenario.
pub struct PhoenixPeer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl PhoenixPeer {
    /// Starts `node phoenix_client.mjs <scenario> --url <url> <extra...>`.
    pub fn start(scenario: &str, url: &str, extra: &[&str]) -> PhoenixPeer {
        let mut child = Command::new("node")
            .arg(peers_dir().join("phoenix_client.mjs"))
            .arg(scenario)
            .args(["--url", url])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("stdout piped");
        PhoenixPeer {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next JSON line the peer prints.
    pub async fn next_line(&mut self) -> Value {
        let line = tokio::time::timeout(PEER_WAIT, self.lines.next_line())
            .await
            .expect("the peer prints in time")
            .expect("peer stdout readable")
            .expect("the peer printed a line before exiting");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("peer printed non-JSON: {line}"))
    }

    /// Waits for the peer to exit; returns its last JSON line.
    pub async fn result(mut self) -> Value {
        let mut last = Value::Null;
        while let Ok(Some(line)) = tokio::time::timeout(PEER_WAIT, self.lines.next_line())
            .await
            .expect("peer in time")
        {
            last = serde_json::from_str(&line).unwrap_or(Value::String(line));
        }
        let status = tokio::time::timeout(PEER_WAIT, self.child.wait())
            .await
            .expect("peer exits in time")
            .expect("peer status");
        assert_eq!(
            last["ok"], true,
            "phoenix.js scenario failed ({status}): {last}"
        );
        last
    }
}

/// Runs one scenario to the end and returns its result line.
pub async fn run_scenario(scenario: &str, url: &str, extra: &[&str]) -> Value {
    PhoenixPeer::start(scenario, url, extra).result().await
}
