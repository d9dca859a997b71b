//! The switchboard side's clients: supervised connections opened through a
//! `Switchboard`, configured as an application would.

use std::time::Duration;

use actix::Addr;
use anyhow::{anyhow, bail};
use serde_json::json;
use switchboard::client::{
    ConnectionConfig, ConnectionHandle, ConnectionStatus, Open, OpenProducer, PhoenixHandle,
    ProducerHandle, Switchboard,
};
use switchboard::protocol::phoenix::ReplyStatus;

/// How long a connection may take to come up.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(30);

/// The bench's connection settings: the defaults, with queues sized for a
/// sender that keeps thousands of messages in flight.
pub fn connection_config(url: &str) -> ConnectionConfig {
    let mut config = ConnectionConfig::new(url);
    config.write_queue_frames = 16 * 1024;
    config.write_queue_bytes = 16 * 1024 * 1024;
    config.buffer_max_frames = 16 * 1024;
    config.buffer_max_bytes = 16 * 1024 * 1024;
    config.max_concurrent_requests = 4096;
    config
}

/// Opens a Phoenix connection and waits until it is connected.
pub async fn open(
    board: &Addr<Switchboard>,
    config: ConnectionConfig,
) -> anyhow::Result<PhoenixHandle> {
    let handle = board
        .send(Open(config))
        .await
        .map_err(|error| anyhow!("switchboard gone: {error}"))??;
    wait_connected(&handle, CONNECT_WITHIN).await?;
    Ok(handle)
}

/// Opens a Phoenix connection and joins `topic`.
pub async fn open_joined(
    board: &Addr<Switchboard>,
    url: &str,
    topic: &str,
) -> anyhow::Result<PhoenixHandle> {
    let handle = open(board, connection_config(url)).await?;
    let reply = handle.join(topic, json!({})).await?;
    if reply.status != ReplyStatus::Ok {
        bail!("join of {topic} refused: {:?}", reply.response);
    }
    Ok(handle)
}

/// Opens an envelope v1 (ingest) connection and waits until it is connected.
pub async fn open_producer(board: &Addr<Switchboard>, url: &str) -> anyhow::Result<ProducerHandle> {
    let handle = board
        .send(OpenProducer(connection_config(url)))
        .await
        .map_err(|error| anyhow!("switchboard gone: {error}"))??;
    wait_connected(&handle, CONNECT_WITHIN).await?;
    Ok(handle)
}

/// Waits until `link` reports `Connected`.
pub async fn wait_connected(link: &ConnectionHandle, within: Duration) -> anyhow::Result<()> {
    let mut status = link.watch_status();
    let reached = tokio::time::timeout(within, async {
        loop {
            match *status.borrow_and_update() {
                ConnectionStatus::Connected => return Ok(()),
                ConnectionStatus::Closed => bail!("connection to {} closed", link.url()),
                _ => {}
            }
            status
                .changed()
                .await
                .map_err(|_| anyhow!("status watch of {} ended", link.url()))?;
        }
    })
    .await;
    reached.map_err(|_| anyhow!("{} not connected within {within:?}", link.url()))?
}
