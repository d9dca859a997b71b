//! PHX-S15. Handshake refusals a developer can act on: a refused origin is
//! logged at WARN with the origin, and the 403 bodies for a refused origin
//! and for a wrong `vsn` say different things.

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::WAIT;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error;

/// The status and body of a refused upgrade.
async fn refusal(request: impl IntoClientRequest + Unpin) -> (u16, String) {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await {
        Ok(Err(Error::Http(response))) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_origin_is_logged_and_told_apart_from_a_wrong_vsn() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .kill_on_drop(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(WAIT, stdout.next_line())
        .await
        .expect("serve says where it listens")
        .expect("stdout")
        .expect("a line");
    let started: Value = serde_json::from_str(&line).expect("JSON");
    let socket = started["socket"].as_str().expect("socket URL").to_owned();

    let mut from_elsewhere = format!("{socket}?vsn=2.0.0")
        .into_client_request()
        .expect("request");
    from_elsewhere.headers_mut().insert(
        "origin",
        "http://elsewhere.example:5173".parse().expect("header"),
    );
    let (origin_status, origin_body) = refusal(from_elsewhere).await;
    let (vsn_status, vsn_body) = refusal(format!("{socket}?vsn=1.0.0")).await;
    assert_eq!((origin_status, vsn_status), (403, 403));
    assert!(
        origin_body.contains("server.allowed_origins"),
        "{origin_body}"
    );
    assert!(vsn_body.contains("vsn=2.0.0"), "{vsn_body}");
    assert_ne!(origin_body, vsn_body);

    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let logged = tokio::time::timeout(WAIT, async {
        while let Some(line) = stderr.next_line().await.expect("stderr") {
            if line.contains("WARN") && line.contains("http://elsewhere.example:5173") {
                return line;
            }
        }
        panic!("serve exited without logging the origin");
    })
    .await
    .expect("the refusal is logged");
    assert!(logged.contains("allowed_origins"), "{logged}");
}
