//! `switchboard send`: join, push one event, report the reply.

use std::time::Duration;

use actix::Actor;
use serde_json::{json, Value};

use crate::client_args::{terminal, ConnectArgs, JoinArgs};
use crate::with_sources;
use switchboard::client::{JoinError, Open, Switchboard};
use switchboard::protocol::phoenix::{Reply, ReplyStatus};

/// How a `send` ended; each maps to an exit code.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// The reply was `ok` (exit 0).
    Ok(Reply),
    /// The reply, or the join, was `error` (exit 1).
    Refused(Reply),
    /// No connection, or no reply in time (exit 2).
    Failed(String),
}

impl SendOutcome {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            SendOutcome::Ok(_) => 0,
            SendOutcome::Refused(_) => 1,
            SendOutcome::Failed(_) => 2,
        }
    }

    /// The JSON line printed for it.
    pub fn to_json(&self) -> Value {
        match self {
            SendOutcome::Ok(reply) | SendOutcome::Refused(reply) => reply.to_value(),
            SendOutcome::Failed(reason) => json!({"status": "failed", "error": reason}),
        }
    }
}

/// What to send (also the `send` subcommand's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct SendOptions {
    /// Socket URL.
    pub url: String,
    /// Topic to join and push on.
    #[arg(long)]
    pub topic: String,
    /// Event name.
    #[arg(long)]
    pub event: String,
    /// JSON payload.
    #[arg(long, default_value = "{}", value_parser = parse_json)]
    pub payload: Value,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub join: JoinArgs,
    /// Reply timeout (also bounds the connect and the join).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

/// Connects (once, no retries), joins, pushes, and reports the reply.
pub async fn send(options: SendOptions) -> SendOutcome {
    let mut config = options.connect.config(&options.url);
    config.fail_first_connect = true;
    config.connect_timeout = options.timeout;
    config.join_timeout = options.timeout;
    config.push_timeout = options.timeout;
    config.buffer_deadline = options.timeout;
    let board = Switchboard::default().start();
    let handle = match board.send(Open(config)).await {
        Ok(Ok(handle)) => handle,
        Ok(Err(error)) => {
            let reason = terminal(&error).unwrap_or_else(|| with_sources(&error));
            return SendOutcome::Failed(reason);
        }
        Err(error) => return SendOutcome::Failed(with_sources(&error)),
    };
    let outcome = match handle.join(&options.topic, options.join.payload()).await {
        Err(JoinError::Refused { response, .. } | JoinError::Unrecovered { response, .. }) => {
            SendOutcome::Refused(Reply {
                status: ReplyStatus::Error,
                response,
            })
        }
        Ok(_) => match handle
            .push(&options.topic, &options.event, options.payload)
            .await
        {
            Ok(reply) if reply.status == ReplyStatus::Ok => SendOutcome::Ok(reply),
            Ok(reply) => SendOutcome::Refused(reply),
            Err(error) => SendOutcome::Failed(with_sources(&error)),
        },
        Err(error) => SendOutcome::Failed(with_sources(&error)),
    };
    handle.close().await;
    outcome
}
