//! The peer column: the published `ezsockets` client crate, speaking the
//! same frames to the same hub as switchboard's client.

use std::time::Duration;

use anyhow::{anyhow, bail};
use async_trait::async_trait;
use ezsockets::{ClientConfig, ClientExt, Utf8Bytes};
use tokio::sync::{mpsc, oneshot};

/// How long the peer may take to connect.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// The `ezsockets` client actor: hands every text frame to the bench (or
/// drops it, for one-way runs where the hub's acks are not read).
struct PeerClient {
    inbox: Option<mpsc::UnboundedSender<Utf8Bytes>>,
    connected: Option<oneshot::Sender<()>>,
}

#[async_trait]
impl ClientExt for PeerClient {
    type Call = ();

    async fn on_text(&mut self, text: Utf8Bytes) -> Result<(), ezsockets::Error> {
        if let Some(inbox) = &self.inbox {
            let _ = inbox.send(text);
        }
        Ok(())
    }

    async fn on_binary(&mut self, _: ezsockets::Bytes) -> Result<(), ezsockets::Error> {
        Ok(())
    }

    async fn on_call(&mut self, _: ()) -> Result<(), ezsockets::Error> {
        Ok(())
    }

    async fn on_connect(&mut self) -> Result<(), ezsockets::Error> {
        if let Some(connected) = self.connected.take() {
            let _ = connected.send(());
        }
        Ok(())
    }
}

/// A connected `ezsockets` client.
pub struct Peer {
    client: ezsockets::Client<PeerClient>,
    inbox: mpsc::UnboundedReceiver<Utf8Bytes>,
}

impl Peer {
    /// Connects to `url`; with `read` false, inbound frames are dropped.
    pub async fn connect(url: &str, read: bool) -> anyhow::Result<Peer> {
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let (connected_tx, connected) = oneshot::channel();
        let config = ClientConfig::new(url)
            .max_initial_connect_attempts(1)
            .max_reconnect_attempts(0);
        let (client, running) = ezsockets::connect(
            move |_| PeerClient {
                inbox: read.then_some(inbox_tx),
                connected: Some(connected_tx),
            },
            config,
        )
        .await;
        tokio::spawn(running);
        tokio::time::timeout(CONNECT_WITHIN, connected)
            .await
            .map_err(|_| anyhow!("ezsockets did not connect to {url}"))?
            .map_err(|_| anyhow!("ezsockets gave up connecting to {url}"))?;
        Ok(Peer { client, inbox })
    }

    /// Queues a text frame.
    pub fn send(&self, text: String) -> anyhow::Result<()> {
        self.client
            .text(text)
            .map(|_| ())
            .map_err(|_| anyhow!("the ezsockets client is gone"))
    }

    /// The next text frame the server sent.
    pub async fn recv(&mut self) -> anyhow::Result<Utf8Bytes> {
        match self.inbox.recv().await {
            Some(text) => Ok(text),
            None => bail!("the ezsockets client stopped reading"),
        }
    }

    /// Sends `text` and waits for the next text frame.
    pub async fn round_trip(&mut self, text: String) -> anyhow::Result<Utf8Bytes> {
        self.send(text)?;
        self.recv().await
    }

    /// Closes the socket.
    pub fn close(&self) {
        let _ = self.client.close(None);
    }
}
