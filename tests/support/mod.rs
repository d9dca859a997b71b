//! Shared helpers of the integration tests: a hub on 127.0.0.1:0 and a raw
//! WebSocket client that speaks Phoenix V2 frames, every wait bounded.

#![allow(dead_code)]

pub mod cli;
pub mod client;
pub mod cluster;
pub mod fault_proxy;
pub mod nats;
pub mod peers;
pub mod script_server;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard::config::Config;
use switchboard::server::{self, ChannelRouter, RunningHub};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound of every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(5);

/// A config listening on a free loopback port.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".to_owned();
    config
}

/// Starts a hub with the default rooms.
pub fn start_hub(config: &Config) -> RunningHub {
    start_hub_with(config, ChannelRouter::rooms())
}

/// A bearer token requirement.
pub fn bearer(token: &str) -> server::Credentials {
    server::Credentials::Bearer(token.as_bytes().to_vec())
}

/// Starts a hub that requires `credentials`.
pub fn start_hub_with_credentials(config: &Config, credentials: server::Credentials) -> RunningHub {
    server::HubService::builder(config)
        .router(ChannelRouter::rooms())
        .credentials(credentials)
        .start()
        .expect("hub starts")
}

/// Starts a hub with `router`.
pub fn start_hub_with(config: &Config, router: ChannelRouter) -> RunningHub {
    switchboard::install_prometheus_recorder();
    server::HubService::builder(config)
        .router(router)
        .credentials(server::Credentials::Open)
        .start()
        .expect("hub starts")
}

/// The V2 socket URL of `hub`.
pub fn v2_url(hub: &RunningHub) -> String {
    format!("{}?vsn=2.0.0", hub.socket_url())
}

/// A raw Phoenix V2 client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server did to an upgrade request that was refused.
pub async fn refused_status(request: impl IntoClientRequest + Unpin) -> u16 {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await {
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            response.status().as_u16()
        }
        Ok(Err(other)) => panic!("unexpected error: {other}"),
        Ok(Ok(_)) => panic!("the upgrade was accepted"),
        Err(_) => panic!("no answer to the upgrade"),
    }
}

impl Client {
    /// Connects to `url` (a full request, for custom headers).
    pub async fn connect(request: impl IntoClientRequest + Unpin) -> Client {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")
            .expect("upgrade accepted");
        Client { ws }
    }

    /// Connects to the hub's V2 endpoint.
    pub async fn to(hub: &RunningHub) -> Client {
        Client::connect(v2_url(hub)).await
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends a V2 frame.
    pub async fn send(
        &mut self,
        jr: Option<&str>,
        r: Option<&str>,
        topic: &str,
        event: &str,
        payload: Value,
    ) {
        self.send_text(json!([jr, r, topic, event, payload]).to_string())
            .await;
    }

    /// Sends a heartbeat with ref `r` (not waiting for its reply).
    pub async fn heartbeat(&mut self, r: &str) {
        self.send(None, Some(r), "phoenix", "heartbeat", json!({}))
            .await;
    }

    /// Sends a raw WebSocket message.
    pub async fn send_message(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// The next text frame, parsed; panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("socket open")
                .expect("no socket error");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Joins `topic` with join_ref = ref = `jr`; returns the reply frame.
    pub async fn join(&mut self, topic: &str, jr: &str) -> Value {
        self.send(Some(jr), Some(jr), topic, "phx_join", json!({}))
            .await;
        self.recv().await
    }

    /// Waits for the close frame; returns its code (None when the socket just dropped).
    pub async fn expect_close(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("the socket closes in time");
            match next {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|CloseFrame { code, .. }| u16::from(code))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The underlying stream, owned (to split it into halves).
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.ws
    }

    /// The underlying stream, for tests that need raw control.
    pub fn inner(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        &mut self.ws
    }
}

/// `{"status":"ok","response":R}`.
pub fn ok(response: Value) -> Value {
    json!({"status": "ok", "response": response})
}

/// `{"status":"error","response":{"reason":reason}}`.
pub fn error(reason: &str) -> Value {
    json!({"status": "error", "response": {"reason": reason}})
}

/// Polls `condition` every 5 ms until it holds or [`WAIT`] passes; returns
/// whether it held. For state with no event to await (counters, directories).
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Runs `switchboard publish URL --count N --size 100`; asserts it exits 0
/// and returns its JSON summary.
pub async fn run_publish(url: &str, count: u64) -> serde_json::Value {
    run_publish_with(url, count, &[]).await
}

/// [`run_publish`] with more arguments (e.g. `--rate`).
pub async fn run_publish_with(url: &str, count: u64, extra: &[&str]) -> serde_json::Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "publish",
            url,
            "--count",
            &count.to_string(),
            "--size",
            "100",
        ])
        .args(extra)
        .output()
        .await
        .expect("publish runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON summary line")
}
