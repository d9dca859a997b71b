//! The `switchboard` binary in tests: a command for it, `serve` started
//! and its first JSON line read, each wait bounded.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::WAIT;

/// The binary, killed when its handle drops.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.kill_on_drop(true);
    command
}

/// Starts `serve`; returns the child and the JSON line it prints once listening.
pub async fn spawn_serve(mut command: Command) -> (tokio::process::Child, Value) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = next_json(&mut lines).await;
    (child, started)
}

/// The next line of a child's stdout, as JSON (bounded).
pub async fn next_json(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> Value {
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    serde_json::from_str(&line).unwrap()
}
