//! PHX-S16. A close the hub starts ends the TCP connection promptly:
//! measured from the hub's close frame to the end of the stream, for a peer
//! that answers the close at once.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// From the close frame's arrival to the end of the TCP stream.
async fn close_to_eof(client: Client) -> Duration {
    let mut ws = client.into_inner();
    let closed_at = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Close(_))) => break Instant::now(),
            Some(Ok(_)) => continue,
            other => panic!("expected the hub's close frame, got {other:?}"),
        }
    };
    // tungstenite answered the close as it read it; now the hub's turn.
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the end in time")
        {
            None | Some(Err(_)) => return closed_at.elapsed(),
            Some(Ok(_)) => continue,
        }
    }
}

#[actix_web::test]
async fn the_tcp_connection_ends_within_100ms_of_the_close_frame() {
    let hub = start_hub(&test_config());
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(Client::to(&hub).await);
    }
    let service = hub.service().clone();
    let drain = actix_web::rt::spawn(async move { service.drain().await });
    let waits = futures_util::future::join_all(clients.into_iter().map(close_to_eof)).await;
    drain.await.expect("drained");
    eprintln!("close frame to TCP end: {waits:?}");
    for wait in waits {
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
    }
}
