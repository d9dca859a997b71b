//! The floor's clients: raw tokio-tungstenite sockets (the baseline's
//! settings) speaking Phoenix V2 or envelope v1, every frame they read
//! parsed borrowed.

use std::sync::Arc;

use anyhow::bail;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{ingest, phoenix};
use crate::baseline::client::{self, Ws};
use crate::counter::Counter;

/// Connects to `url` and joins `topic` (join_ref = ref = 1).
pub async fn join(url: &str, topic: &'static str) -> anyhow::Result<Ws> {
    let mut ws = client::connect(url).await?;
    joined(&mut ws, topic).await?;
    Ok(ws)
}

/// Joins `topic` on an open socket and checks the reply.
pub async fn joined(ws: &mut Ws, topic: &'static str) -> anyhow::Result<()> {
    let reply = client::round_trip(ws, phoenix::Pushes::new(topic).join().into()).await?;
    if phoenix::ok_reply_ref(&reply)? != Some(1) {
        bail!("the join of {topic} got {reply}");
    }
    Ok(())
}

/// Reads until the `ok` reply to `msg_ref`.
pub async fn reply_to(ws: &mut Ws, msg_ref: u64) -> anyhow::Result<()> {
    loop {
        let text = client::next_text(ws).await?;
        if phoenix::ok_reply_ref(&text)? == Some(msg_ref) {
            return Ok(());
        }
    }
}

/// Counts the pushes of `event` on `topic` a receiver gets until its socket ends.
pub async fn count_pushes(mut ws: Ws, topic: &str, event: &str, delivered: Arc<Counter>) {
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            if let Ok((_, _, on, what, _)) = phoenix::parse(&text) {
                if on == topic && what == event {
                    delivered.add(1);
                }
            }
        }
    }
}

/// Counts the acks read from `stream` until it ends.
pub async fn count_acks(
    mut stream: futures_util::stream::SplitStream<Ws>,
    acks: Arc<Counter>,
) -> anyhow::Result<()> {
    while let Some(message) = stream.next().await {
        if let Message::Text(text) = message? {
            if ingest::parse(&text)?.kind == ingest::ACK {
                acks.add(1);
            }
        }
    }
    Ok(())
}
