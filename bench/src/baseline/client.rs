//! Baseline clients: plain tokio-tungstenite sockets.

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::ws_config;

/// A baseline client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects to `url` with the baseline settings (4 KiB read buffer, no Nagle).
pub async fn connect(url: &str) -> anyhow::Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(ws)
}

/// Connects `count` sockets to `url`, at most `parallel` handshakes at once.
pub async fn connect_many(url: &str, count: usize, parallel: usize) -> anyhow::Result<Vec<Ws>> {
    futures_util::stream::iter(0..count)
        .map(|_| connect(url))
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The next text frame (pings, pongs and binary frames are skipped).
pub async fn next_text(ws: &mut Ws) -> anyhow::Result<Utf8Bytes> {
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => return Ok(text),
            Message::Close(_) => bail!("the server closed the socket"),
            _ => continue,
        }
    }
    bail!("the socket ended")
}

/// Sends `text` (flushed) and waits for the next text frame.
pub async fn round_trip(ws: &mut Ws, text: Utf8Bytes) -> anyhow::Result<Utf8Bytes> {
    ws.send(Message::Text(text)).await?;
    next_text(ws).await
}
