//! Whether the third-party peers the other integration tests drive are
//! installed, so that a missing one shows in the summary of `cargo test`
//! instead of hiding behind passing tests that skipped themselves.
//!
//! One test per peer: it fails when the peer is missing, saying how to install
//! it, unless `SWITCHBOARD_SKIP_PEERS=1` accepts that (never under `CI=true`).
//! When the peer is there it must work. The `zz_` prefix makes cargo run this
//! binary after the crate's other integration tests, so that its failure
//! hides none of them. See `tests/support/peers.rs` for the whole design.

mod support;

use std::process::Command;

use support::nats::NatsServer;
use support::peers::{peers_dir, require, Peer};

#[test]
fn node_and_phoenix_js_are_installed() {
    if !require(Peer::Node) {
        return;
    }
    let output = Command::new("node")
        .current_dir(peers_dir())
        .args([
            "--input-type=module",
            "-e",
            "await import('phoenix'); await import('ws'); console.log(process.version)",
        ])
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node cannot load phoenix and ws from tests/peers ({}): {}\n\
         run `npm ci --prefix tests/peers` again",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn nats_server_is_installed() {
    if !require(Peer::NatsServer) {
        return;
    }
    // Starts it and waits until it answers the protocol and JetStream.
    let server = NatsServer::start().expect("nats-server is installed");
    assert_ne!(server.port(), 0);
}

#[test]
fn chromium_is_installed() {
    if !require(Peer::Chromium) {
        return;
    }
    let path = support::peers::chromium_path().expect("chromium is installed");
    let output = Command::new(path)
        .arg("--version")
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium --version failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
