//! The third-party peers the integration tests drive, and what happens when
//! one is missing.
//!
//! Two peers: the official phoenix.js client under `tests/peers/` (needs
//! `node` on `PATH` and `npm ci --prefix tests/peers`), driven by the
//! `phoenix_js` tests, and a real `nats-server` (see [`super::nats`]), driven
//! by `sink_nats`, `ingest_jetstream` and `sequence_chaos`. The `dashboard`
//! test also drives headless Chromium ([`Peer::Chromium`]) with node.
//!
//! # A missing peer
//!
//! libtest cannot mark a test ignored at run time, and it captures what a
//! passing test prints with `print!`/`eprint!`, so a skip printed that way
//! leaves an all-green summary. Instead:
//!
//! * A test whose peer is missing returns early, after writing
//!   `*** SKIPPED <test>: <why> ***` straight to the process's stderr through
//!   [`std::io::stderr`]'s handle, which libtest does not capture (it
//!   redirects only the `print!` family): the notice shows in the terminal
//!   even though the test passes.
//! * The `zz_peers` test binary (`tests/zz_peers.rs`) has one test per peer,
//!   `node_and_phoenix_js_are_installed` and `nats_server_is_installed`. Each
//!   fails when its peer is missing, with how to install it, so the summary of
//!   `cargo test` shows the failure. Cargo runs a package's test binaries in
//!   name order, so this one runs after every other integration test of the
//!   crate: without `--no-fail-fast` its failure stops only the `bench`
//!   package's unit tests and the doc tests; with it, cargo's last line names
//!   `--test zz_peers`. When the peer is there, the test proves it works
//!   (phoenix.js and ws import under node; a server starts and answers).
//! * `SWITCHBOARD_SKIP_PEERS=1` accepts running without the missing peers:
//!   the `zz_peers` tests then pass, each writing an uncaptured
//!   `*** MISSING PEER ... ***` notice instead. It only turns a missing peer
//!   from a failure into a skip; a peer that is there is always used.
//! * Under `CI=true` (or `CI=1`) a missing peer fails every test that needs
//!   it and the `zz_peers` test, whatever `SWITCHBOARD_SKIP_PEERS` says.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Upper bound of one peer run.
pub const PEER_WAIT: Duration = Duration::from_secs(30);

/// The variable that accepts running without a missing peer (outside CI).
pub const SKIP_VARIABLE: &str = "SWITCHBOARD_SKIP_PEERS";

/// A peer the tests drive.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    /// `node` with the packages of `tests/peers` (phoenix.js over ws).
    Node,
    /// `nats-server` (with JetStream).
    NatsServer,
    /// Headless Chromium (Debian's `chromium`), driven over the DevTools
    /// protocol by `tests/peers/dashboard_browser.mjs`.
    Chromium,
}

impl Peer {
    /// What the peer is called in notices.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Node => "node with phoenix.js",
            Peer::NatsServer => "nats-server",
            Peer::Chromium => "chromium",
        }
    }

    /// How to install it.
    pub fn install_hint(self) -> &'static str {
        match self {
            Peer::Node => {
                "install Node.js 20 or later, then run `npm ci --prefix tests/peers` \
                 in the crate root"
            }
            Peer::NatsServer => {
                "install nats-server 2.9 or later (Debian/Ubuntu: `sudo apt-get install \
                 nats-server`), on PATH, in /usr/sbin or in /usr/local/bin"
            }
            Peer::Chromium => {
                "install Chromium (Debian/Ubuntu: `sudo apt-get install chromium`), on PATH \
                 as `chromium` or `chromium-browser`"
            }
        }
    }

    /// How to install it, in brief.
    pub fn short_hint(self) -> &'static str {
        match self {
            Peer::Node => "install Node.js 20+ and run `npm ci --prefix tests/peers`",
            Peer::NatsServer => "install nats-server (`apt-get install nats-server`)",
            Peer::Chromium => "install chromium (`apt-get install chromium`)",
        }
    }

    /// The test binaries that need it.
    pub fn needed_by(self) -> &'static str {
        match self {
            Peer::Node => "phoenix_js",
            Peer::NatsServer => "sink_nats, ingest_jetstream and sequence_chaos",
            Peer::Chromium => "dashboard",
        }
    }

    /// Why the peer cannot be used here, or `None` when it is installed.
    pub fn missing(self) -> Option<String> {
        match self {
            Peer::Node => node_missing(),
            Peer::NatsServer => super::nats::binary_missing(),
            Peer::Chromium => chromium_path()
                .is_none()
                .then(|| "neither `chromium` nor `chromium-browser` is on PATH".to_owned()),
        }
    }
}

/// Whether `CI` is `true` or `1`: then every peer is required.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// Whether `SWITCHBOARD_SKIP_PEERS` accepts missing peers (never under CI).
pub fn skip_accepted() -> bool {
    !is_ci()
        && std::env::var(SKIP_VARIABLE)
            .is_ok_and(|value| value == "1" || value.eq_ignore_ascii_case("true"))
}

/// Writes `*** text ***` as one line to the process's stderr through its
/// handle: libtest captures only the `print!`/`eprint!` family, so this shows
/// in the terminal even when the test passes.
pub fn uncaptured_notice(text: &str) {
    let line = format!("*** {text} ***\n");
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(line.as_bytes());
    let _ = stderr.flush();
}

/// For a test that needs `peer`, which is missing because of `why`: panics
/// under CI, otherwise writes an uncaptured SKIPPED notice (the caller then
/// returns early).
#[track_caller]
pub fn skip_or_fail(test: &str, peer: Peer, why: &str) {
    if is_ci() {
        panic!(
            "{test}: {why} (CI=true: real peers are required; {})",
            peer.install_hint()
        );
    }
    uncaptured_notice(&format!(
        "SKIPPED {test}: {why}; to run it: {}",
        peer.short_hint()
    ));
}

/// For the checks in `tests/zz_peers.rs`: whether `peer` is installed (the
/// caller then proves it works). A missing peer panics with how to install
/// it, unless [`skip_accepted`], when it writes an uncaptured notice and
/// returns `false`.
#[track_caller]
pub fn require(peer: Peer) -> bool {
    let Some(why) = peer.missing() else {
        return true;
    };
    let name = peer.name();
    let needed_by = peer.needed_by();
    let hint = peer.install_hint();
    if skip_accepted() {
        uncaptured_notice(&format!(
            "MISSING PEER {name}: {why}; the {needed_by} tests were skipped, not run \
             ({SKIP_VARIABLE}=1 accepts this)"
        ));
        return false;
    }
    let (consequence, remedy) = if is_ci() {
        (
            "fail too",
            format!("CI=true requires every peer ({SKIP_VARIABLE} is ignored): {hint}"),
        )
    } else {
        (
            "were skipped, not run",
            format!("To run them: {hint}; or set {SKIP_VARIABLE}=1 to accept running without it"),
        )
    };
    panic!(
        "\n\nMISSING PEER {name}: {why}.\nThe tests in {needed_by} that need it \
         {consequence}.\n{remedy}.\n"
    );
}

/// `tests/peers`, where the phoenix.js peer and its packages live.
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Why the phoenix.js peer cannot run here, or `None`.
fn node_missing() -> Option<String> {
    if !on_path("node") {
        return Some("`node` is not on PATH".to_owned());
    }
    ["phoenix", "ws"]
        .into_iter()
        .find(|package| !peers_dir().join("node_modules").join(package).is_dir())
        .map(|package| {
            format!("tests/peers/node_modules/{package} is missing (`npm ci` has not run there)")
        })
}

/// Where Chromium is: `chromium` or `chromium-browser` on PATH.
pub fn chromium_path() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).find_map(|dir| {
        ["chromium", "chromium-browser"]
            .into_iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// Whether node and the peers' packages are here. Panics under `CI=true`
/// when they are not; otherwise writes an uncaptured SKIPPED notice.
pub fn node_ready(test: &str) -> bool {
    match node_missing() {
        None => true,
        Some(why) => {
            skip_or_fail(test, Peer::Node, &why);
            false
        }
    }
}

/// A running phoenix.js scenario.
pub struct PhoenixPeer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdin: Option<tokio::process::ChildStdin>,
}

impl PhoenixPeer {
    /// Starts `node phoenix_client.mjs <scenario> --url <url> <extra...>`.
    pub fn start(scenario: &str, url: &str, extra: &[&str]) -> PhoenixPeer {
        PhoenixPeer::start_with_env(scenario, url, extra, &[])
    }

    /// [`PhoenixPeer::start`] with extra environment variables (e.g.
    /// `NODE_EXTRA_CA_CERTS` for a test CA).
    pub fn start_with_env(
        scenario: &str,
        url: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> PhoenixPeer {
        PhoenixPeer::spawn("phoenix_client.mjs", scenario, url, extra, env)
    }

    /// Starts `node presence_client.mjs <scenario> --url <url> <extra...>`.
    pub fn presence(scenario: &str, url: &str, extra: &[&str]) -> PhoenixPeer {
        PhoenixPeer::spawn("presence_client.mjs", scenario, url, extra, &[])
    }

    /// Starts `node cluster_client.mjs <scenario> --url <url> <extra...>`.
    pub fn cluster(scenario: &str, url: &str, extra: &[&str]) -> PhoenixPeer {
        PhoenixPeer::spawn("cluster_client.mjs", scenario, url, extra, &[])
    }

    /// Starts `node longpoll_client.mjs <scenario> --url <url>`.
    pub fn longpoll(scenario: &str, url: &str) -> PhoenixPeer {
        PhoenixPeer::spawn("longpoll_client.mjs", scenario, url, &[], &[])
    }

    /// Starts `node dashboard_browser.mjs check --url <url> <extra...>`: Chromium
    /// on the hub's dashboard while phoenix.js clients come and go.
    pub fn dashboard_browser(url: &str, extra: &[&str]) -> PhoenixPeer {
        PhoenixPeer::spawn("dashboard_browser.mjs", "check", url, extra, &[])
    }

    /// Starts `node listen_client.mjs listen --url <url> <extra...>`: joins,
    /// then ends at the first message of `--event`.
    pub fn listen(url: &str, extra: &[&str]) -> PhoenixPeer {
        PhoenixPeer::spawn("listen_client.mjs", "listen", url, extra, &[])
    }

    fn spawn(
        script: &str,
        scenario: &str,
        url: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> PhoenixPeer {
        let mut child = Command::new("node")
            .envs(env.iter().copied())
            .arg(peers_dir().join(script))
            .arg(scenario)
            .args(["--url", url])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("stdout piped");
        PhoenixPeer {
            stdin: child.stdin.take(),
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Closes the peer's stdin (a scenario that runs until then ends).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
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

    /// The next JSON line if the peer prints one within `within`.
    pub async fn line_within(&mut self, within: Duration) -> Option<Value> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .ok()?;
        let line = line.expect("peer stdout readable")?;
        Some(
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("peer printed non-JSON: {line}")),
        )
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
