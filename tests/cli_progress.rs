//! The `switchboard` binary's progress on long work: drawn on a terminal
//! (a pseudo-terminal through `script`), nothing but the JSON line when piped.

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::cli::{binary, next_json, spawn_serve};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// `script` (util-linux), to run a command on a pseudo-terminal; `None`
/// (the test says it skips) when it is not on PATH.
fn script_on_path() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("script"))
        .find(|file| file.is_file());
    if found.is_none() {
        eprintln!("SKIPPED: the TTY part needs `script` (util-linux) on PATH");
    }
    found
}

/// `switchboard <args>` under `script -qfec`: stdout and stderr on one
/// pseudo-terminal, whose output is the command's stdout.
fn on_a_pty(script: &std::path::Path, args: &[&str]) -> Command {
    let quote = |word: &str| format!("'{}'", word.replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_switchboard"))
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let mut command = Command::new(script);
    command
        .args(["-qfec", &line.join(" "), "/dev/null"])
        .env("TERM", "xterm")
        .kill_on_drop(true);
    command
}

/// Runs `command` to its end (bounded).
async fn output_of(mut command: Command) -> std::process::Output {
    tokio::time::timeout(std::time::Duration::from_secs(30), command.output())
        .await
        .expect("it ends by itself")
        .expect("it runs")
}

#[actix_web::test]
async fn publish_prints_only_its_json_line_when_piped_and_a_bar_on_a_terminal() {
    let mut command = binary();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let (_serve, started) = spawn_serve(command).await;
    let url = format!("ws://{}/ingest", started["listening"].as_str().unwrap());
    let args = ["publish", url.as_str(), "--count", "300", "--size", "100"];

    let mut piped = binary();
    piped
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = output_of(piped).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.ends_with('\n') && stdout.lines().count() == 1,
        "{stdout:?}"
    );
    let summary: Value = serde_json::from_str(&stdout).expect("one JSON line");
    let mut keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut wanted = [
        "sent",
        "acked",
        "nacked",
        "failed",
        "elapsed_ms",
        "msgs_per_s",
    ];
    wanted.sort_unstable();
    assert_eq!(keys, wanted, "{stdout}");
    assert_eq!(
        (summary["sent"].as_u64(), summary["acked"].as_u64()),
        (Some(300), Some(300))
    );
    assert_eq!(
        (summary["nacked"].as_u64(), summary["failed"].as_u64()),
        (Some(0), Some(0))
    );
    for progress in ["\r", "\x1b[", "msg/s", "[=", "sent "] {
        assert!(
            !stderr.contains(progress),
            "progress {progress:?} on a pipe: {stderr:?}"
        );
    }

    let Some(script) = script_on_path() else {
        return;
    };
    let output = output_of(on_a_pty(&script, &args)).await;
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{screen}");
    for drawn in ["\r", "sent 300/300", "acked 300", "msg/s"] {
        assert!(
            screen.contains(drawn),
            "no {drawn:?} on the terminal: {screen:?}"
        );
    }
    let json = screen
        .split(['\r', '\n'])
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line on the terminal: {screen:?}"));
    let summary: Value = serde_json::from_str(json).expect("the same JSON line");
    assert_eq!(summary["acked"], 300, "{json}");
}

#[actix_web::test]
async fn tail_progress_counts_pushes_on_a_terminal_and_draws_nothing_on_a_pipe() {
    let hub = start_hub(&test_config());
    let socket = hub.socket_url();
    let args = [
        "tail",
        socket.as_str(),
        "--topic",
        "room:a",
        "--json",
        "--progress",
        "--give-up-after",
        "500ms",
    ];
    let broadcast = |n: u64| {
        hub.service().hub().send(switchboard::server::Broadcast {
            topic: "room:a".into(),
            event: "news".into(),
            payload: serde_json::json!({"n": n}),
        })
    };
    let service = hub.service().clone();

    // Piped: the same lines as without --progress, and nothing on stderr.
    let mut child = binary()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while !seen.iter().any(|v: &Value| v["event"] == "joined") {
        seen.push(next_json(&mut lines).await);
    }
    assert!(eventually(|| service.member_count("room:a") == 1).await);
    broadcast(1).await.unwrap();
    while !seen.iter().any(|v: &Value| v["payload"]["n"] == 1) {
        seen.push(next_json(&mut lines).await);
    }
    drop(lines);
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("tail exits on SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("pushes") && !stderr.contains('\r'),
        "{stderr:?}"
    );

    let Some(script) = script_on_path() else {
        return;
    };
    assert!(eventually(|| service.member_count("room:a") == 0).await);
    let mut child = on_a_pty(&script, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut screen = child.stdout.take().unwrap();
    assert!(eventually(|| service.member_count("room:a") == 1).await);
    for n in 1..=3 {
        broadcast(n).await.unwrap();
    }
    // Every line is written (held at most 100 ms above the counter)...
    let mut text = Vec::new();
    let pushed = |text: &[u8]| {
        let text = String::from_utf8_lossy(text);
        (1..=3).all(|n| text.contains(&format!(r#""payload":{{"n":{n}}}"#)))
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut chunk = [0; 4096];
        while !pushed(&text) {
            let read = tokio::io::AsyncReadExt::read(&mut screen, &mut chunk).await;
            match read.unwrap() {
                0 => break,
                read => text.extend_from_slice(&chunk[..read]),
            }
        }
    })
    .await
    .expect("the pushes in time");
    assert!(pushed(&text), "{:?}", String::from_utf8_lossy(&text));
    // ...then the hub goes away and --give-up-after ends tail, which leaves
    // its last count.
    hub.shutdown().await;
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::io::AsyncReadExt::read_to_end(&mut screen, &mut text),
    )
    .await
    .expect("tail gives up by itself")
    .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("pushes received"), "{text:?}");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(2), "{text:?}");
}
