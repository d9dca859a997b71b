//! `switchboard tail`: connect, join, print every push and connect event.

use std::io::Write;

use actix::Actor;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use switchboard::client::{ClientAuth, ConnectionConfig, Incoming, Open, Switchboard, TokenSource};

/// Bound of the queue between the subscription and the printer.
const PRINT_QUEUE: usize = 1024;

/// What to tail (also the `tail` subcommand's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct TailOptions {
    /// Socket URL, e.g. ws://127.0.0.1:4000/socket/websocket.
    pub url: String,
    /// Topic to join (repeatable).
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
    /// Bearer token.
    #[arg(long)]
    pub token: Option<String>,
    /// One JSON object per line (otherwise a readable line).
    #[arg(long)]
    pub json: bool,
}

/// A connection config for the CLI: Phoenix defaults, optional bearer token.
pub fn cli_config(url: &str, token: Option<&str>) -> ConnectionConfig {
    let mut config = ConnectionConfig::new(url);
    if let Some(token) = token {
        config.auth = ClientAuth::Bearer(TokenSource::Static(token.to_owned()));
    }
    config
}

fn line(json_lines: bool, value: Value) -> String {
    if json_lines {
        return value.to_string();
    }
    let event = value["event"].as_str().unwrap_or("?");
    let rest: Vec<String> = value
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(key, _)| *key != "event")
                .map(|(key, value)| format!("{key}={value}"))
                .collect()
        })
        .unwrap_or_default();
    format!("{event} {}", rest.join(" "))
}

/// Runs until the process is stopped (reconnecting forever), printing one
/// line per event to `out`.
pub async fn tail(options: TailOptions, mut out: impl Write) -> std::io::Result<()> {
    let board = Switchboard::default().start();
    let config = cli_config(&options.url, options.token.as_deref());
    let handle = board
        .send(Open(config))
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    let mut events = handle.events();
    let (pushes, mut printed) = mpsc::channel::<Value>(PRINT_QUEUE);
    for topic in &options.topics {
        let mut incoming = handle.incoming(topic, None, PRINT_QUEUE);
        let forward = pushes.clone();
        actix::spawn(async move {
            while let Some(Incoming {
                topic,
                event,
                payload,
            }) = incoming.recv().await
            {
                let line =
                    json!({"event": "push", "topic": topic, "name": event, "payload": payload});
                if forward.send(line).await.is_err() {
                    break;
                }
            }
        });
        let joining = handle.clone();
        let report = pushes.clone();
        let topic = topic.clone();
        actix::spawn(async move {
            let line = match joining.join(&topic, json!({})).await {
                Ok(reply) => {
                    json!({"event": "joined", "topic": topic, "status": reply.status, "response": reply.response})
                }
                Err(error) => {
                    json!({"event": "join_failed", "topic": topic, "error": crate::with_sources(&error)})
                }
            };
            let _ = report.send(line).await;
        });
    }
    loop {
        let value = tokio::select! {
            event = events.recv() => match event {
                Ok(event) => serde_json::to_value(&event).unwrap_or(Value::Null),
                Err(broadcast::error::RecvError::Lagged(missed)) => json!({"event": "lagged", "missed": missed}),
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            Some(value) = printed.recv() => value,
        };
        writeln!(out, "{}", line(options.json, value))?;
        out.flush()?;
    }
}
