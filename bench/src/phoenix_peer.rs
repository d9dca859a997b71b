//! The second peer column: `phoenix_channels_client`, the published Rust
//! Phoenix Channels client, joined to switchboard's hub as an application
//! would use it (`Channel::send` awaits the reply, `send_noreply` casts).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use phoenix_channels_client::{Channel, Client, Config};

/// How long the client may take to connect and to join.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// A connected client joined to one topic.
pub struct PhoenixPeer {
    client: Client,
    channel: Arc<Channel>,
}

impl PhoenixPeer {
    /// Connects to `url` (the Phoenix endpoint without `vsn`: the client
    /// adds `vsn=2.0.0`) and joins `topic`.
    pub async fn join(url: &str, topic: &str) -> anyhow::Result<PhoenixPeer> {
        let config = Config::new(url).with_context(|| format!("parsing {url}"))?;
        let mut client = Client::new(config)?;
        tokio::time::timeout(CONNECT_WITHIN, client.connect())
            .await
            .map_err(|_| anyhow!("phoenix_channels_client did not connect to {url}"))??;
        let channel = client.join(topic, Some(CONNECT_WITHIN)).await?;
        Ok(PhoenixPeer { client, channel })
    }

    /// The joined channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Leaves the channel and closes the socket.
    pub async fn close(mut self) {
        self.channel.leave().await;
        let _ = tokio::time::timeout(CONNECT_WITHIN, self.client.disconnect()).await;
    }
}
