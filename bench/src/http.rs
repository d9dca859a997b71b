//! A bounded HTTP/1.1 GET of a JSON document (a hub's `/health`), over a
//! plain TCP socket: the bench needs no HTTP client for one request.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response read.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// `GET path` from `addr` with `Connection: close`; the body parsed as JSON
/// whatever the status (a draining hub answers `/health` with 503).
pub async fn get_json(addr: SocketAddr, path: &str, within: Duration) -> anyhow::Result<Value> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut response)
            .await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(within, exchange)
        .await
        .map_err(|_| anyhow!("GET {path} from {addr}: no answer within {within:?}"))?
        .with_context(|| format!("GET {path} from {addr}"))?;
    let text = String::from_utf8_lossy(&response);
    let (_head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("GET {path} from {addr}: no header end in {text:?}"))?;
    serde_json::from_str(body).with_context(|| format!("GET {path} from {addr}: body {body:?}"))
}
