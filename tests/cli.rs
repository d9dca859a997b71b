//! The `switchboard` binary: config errors exit 2 naming the key; `serve`
//! serves, and on SIGTERM closes sockets with 1012 and exits 0.

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::cli::{binary, next_json, spawn_serve};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[actix_web::test]
async fn serve_with_invalid_config_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nmax_connections = 0\n").unwrap();
    let output = binary()
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("server.max_connections must be > 0"),
        "{stderr}"
    );

    let json = dir.path().join("bad.json");
    std::fs::write(&json, r#"{"server": {"idle_timeout": "soon"}}"#).unwrap();
    let output = binary()
        .args(["serve", "--config"])
        .arg(&json)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.idle_timeout: "), "{stderr}");

    // A snapshot file that does not parse is refused, not silently replaced.
    let snapshot = dir.path().join("sequences.json");
    std::fs::write(&snapshot, "{ not json").unwrap();
    let config = dir.path().join("snapshot.toml");
    let text = format!("[snapshot]\npath = {:?}\nevery = \"publish\"\n", snapshot);
    std::fs::write(&config, text).unwrap();
    let output = binary()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("snapshot.path: "), "{stderr}");
    assert!(
        stderr.contains("sequences.json"),
        "names the file: {stderr}"
    );
}

#[actix_web::test]
async fn serve_drains_with_1012_on_sigterm_and_exits_0() {
    let mut command = binary();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let (mut child, started) = spawn_serve(command).await;
    let socket = started["socket"].as_str().unwrap().to_owned();

    let health = format!("http://{}/health", started["listening"].as_str().unwrap());
    let report: Value = awc::Client::new()
        .get(&health)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["status"], "serving");

    let mut client = Client::connect(format!("{socket}?vsn=2.0.0")).await;
    client.join("room:lobby", "1").await;
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    assert_eq!(client.expect_close().await, Some(1012));
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[actix_web::test]
async fn serve_reads_the_bearer_token_from_the_named_env_var() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.toml");
    std::fs::write(
        &path,
        "[auth]\ntype = \"bearer\"\nbearer_token_env = \"SB_CLI_TOKEN\"\n",
    )
    .unwrap();
    let mut command = binary();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env("SB_CLI_TOKEN", "from-env");
    let (_child, started) = spawn_serve(command).await;
    let socket = format!("{}?vsn=2.0.0", started["socket"].as_str().unwrap());
    assert_eq!(refused_status(format!("{socket}&token=wrong")).await, 401);
    Client::connect(format!("{socket}&token=from-env")).await;

    let missing = binary()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env_remove("SB_CLI_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("auth.bearer_token_env: environment variable SB_CLI_TOKEN is not set"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn send_exits_0_on_ok_1_on_error_2_without_connection() {
    let hub = start_hub(&test_config());
    let url = hub.socket_url();
    let run = |topic: &str, url: &str| {
        let mut command = binary();
        command.args([
            "send",
            url,
            "--topic",
            topic,
            "--event",
            "ping",
            "--payload",
            r#"{"n":1}"#,
            "--timeout",
            "2s",
        ]);
        command
    };
    let ok = run("room:a", &url).output().await.unwrap();
    assert_eq!(ok.status.code(), Some(0));
    let reply: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        reply,
        serde_json::json!({"status": "ok", "response": {"n": 1}})
    );

    let refused = run("nope:1", &url).output().await.unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let reply: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(reply["response"]["reason"], "unmatched topic");

    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("ws://{addr}/socket/websocket")
    };
    let unreachable = run("room:a", &dead).output().await.unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
}

#[actix_web::test]
async fn tail_prints_pushes_and_connect_events_and_exits_0_on_sigterm() {
    let first = start_hub(&test_config());
    let addr = first.addr();
    let mut child = binary()
        .args(["tail", &first.socket_url(), "--topic", "room:a", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while !seen.iter().any(|v: &Value| v["event"] == "joined") {
        seen.push(next_json(&mut lines).await);
    }
    assert!(seen.iter().any(|v| v["event"] == "connected"), "{seen:?}");
    let service = first.service().clone();
    assert!(eventually(|| service.member_count("room:a") == 1).await);
    first
        .service()
        .hub()
        .send(switchboard::server::Broadcast {
            topic: "room:a".into(),
            event: "news".into(),
            payload: serde_json::json!({"n": 1}),
        })
        .await
        .unwrap();
    let push = next_json(&mut lines).await;
    assert_eq!(
        push,
        serde_json::json!({"event": "push", "topic": "room:a", "name": "news", "payload": {"n": 1}})
    );

    first.shutdown().await;
    let mut config = test_config();
    config.server.listen = addr.to_string();
    let _second = start_hub(&config);
    let mut events = Vec::new();
    while !events.iter().any(|v: &Value| v["event"] == "rejoined") {
        events.push(next_json(&mut lines).await);
    }
    for wanted in ["disconnected", "reconnecting", "connected", "rejoined"] {
        assert!(
            events.iter().any(|v| v["event"] == wanted),
            "{wanted} missing from {events:?}"
        );
    }
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Runs `switchboard <args>` to its end (bounded); returns the exit code
/// and what it wrote to stderr.
async fn run_to_end(args: &[&str]) -> (Option<i32>, String) {
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        binary().args(args).output(),
    )
    .await
    .expect("it ends by itself")
    .expect("it runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn tail_exits_2_with_a_hint_when_no_dial_can_succeed() {
    let hub = start_hub_with_credentials(&test_config(), bearer("secret"));
    let addr = hub.addr();
    let wrong_path = format!("ws://{addr}/socket");
    let (code, stderr) = run_to_end(&[
        "tail",
        &wrong_path,
        "--topic",
        "room:a",
        "--token",
        "secret",
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("HTTP 404") && stderr.contains("end in /websocket"),
        "{stderr}"
    );
    let right = hub.socket_url();
    let (code, stderr) = run_to_end(&["tail", &right, "--topic", "room:a"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("--token"),
        "{stderr}"
    );
    let http = format!("http://{addr}/socket/websocket");
    let (code, stderr) = run_to_end(&["tail", &http, "--topic", "room:a"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid url"), "{stderr}");
}

#[actix_web::test]
async fn tail_gives_up_after_the_given_time_without_a_connection() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("ws://{addr}/socket/websocket")
    };
    let args = [
        "tail",
        &dead,
        "--topic",
        "room:a",
        "--give-up-after",
        "700ms",
    ];
    let (code, stderr) = run_to_end(&args).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--give-up-after"), "{stderr}");
}

/// Joins only with `{"key": "open", "n": 7}` in the join params.
struct Keyed;

impl switchboard::server::Channel for Keyed {
    fn join(
        &self,
        _: &str,
        payload: &switchboard::protocol::Payload,
        _: &switchboard::server::SocketInfo,
    ) -> Result<Value, switchboard::protocol::ChannelErrorCode> {
        let payload = payload.to_value();
        if payload["key"] == "open" && payload["n"] == 7 {
            Ok(serde_json::json!({}))
        } else {
            Err(switchboard::protocol::ChannelErrorCode::Forbidden)
        }
    }

    fn handle_in(
        &self,
        _: &str,
        payload: &switchboard::protocol::Payload,
        _: &switchboard::server::ChannelContext<'_>,
    ) -> Result<switchboard::server::Outcome, switchboard::server::ChannelFailure> {
        Ok(switchboard::server::Outcome::Ok(payload.clone()))
    }
}

#[actix_web::test]
async fn send_takes_join_params_and_basic_credentials() {
    let router = switchboard::server::ChannelRouter::new().route("keyed:*", Keyed);
    let hub = switchboard::server::HubService::builder(&test_config())
        .router(router)
        .credentials(switchboard::server::Credentials::Basic {
            username: b"ops".to_vec(),
            password: b"pw".to_vec(),
        })
        .start()
        .expect("hub starts");
    let url = hub.socket_url();
    let send = |extra: &[&str]| {
        let mut args = vec![
            "send",
            url.as_str(),
            "--topic",
            "keyed:1",
            "--event",
            "ping",
            "--timeout",
            "3s",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let output = binary().args(&args).output().await.expect("send runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = run(send(&[
        "--basic", "ops:pw", "--param", "key=open", "--param", "n=7",
    ]))
    .await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(send(&[
        "--basic",
        "ops:pw",
        "--params",
        r#"{"key":"open","n":7}"#,
    ]))
    .await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(send(&["--basic", "ops:pw", "--param", "key=shut"])).await;
    assert_eq!(code, Some(1), "refused by the channel: {out}");
    let (code, out) = run(send(&["--basic", "ops:wrong"])).await;
    assert_eq!(code, Some(2), "refused by the hub: {out}");
    assert!(out.contains("401"), "{out}");
}
