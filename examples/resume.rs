//! Resume from sequence and exactly-once ingest, in one short run.
//!
//! ```text
//! cargo run --example resume
//! ```
//!
//! 1. A hub keeps a history of `room:feed:*` (a recoverable topic).
//! 2. A subscriber joins it with `join_recoverable`, its position kept in a
//!    snapshot file; it reads three broadcasts, then its process "stops".
//! 3. Three more are broadcast while it is away.
//! 4. A new subscriber over the same snapshot file resumes: it gets exactly
//!    the three it missed (`recovered: true`), nothing twice.
//! 5. A producer publishes sequenced data to `/ingest`; sending the same
//!    envelope again is acked but not stored twice.

use std::time::Duration;

use actix::{Actor, Addr};
use serde_json::json;
use switchboard::client::{ConnectionConfig, Open, OpenProducer, PhoenixHandle, Switchboard};
use switchboard::config::Config;
use switchboard::sequence::{FileStore, Flush, FlushPolicy, Snapshotter};
use switchboard::server::{Broadcast, ChannelRouter, HubService, RunningHub};

const TOPIC: &str = "room:feed:demo";

type Failure = Box<dyn std::error::Error>;

type Pushes = tokio::sync::mpsc::Receiver<switchboard::client::Incoming>;

/// One subscriber "process": its connection, pushes and position keeper.
struct Subscriber {
    handle: PhoenixHandle,
    pushes: Pushes,
    positions: Addr<Snapshotter>,
}

async fn broadcast(hub: &RunningHub, from: u64, to: u64) -> Result<(), Failure> {
    for n in from..=to {
        let message = Broadcast {
            topic: TOPIC.to_owned(),
            event: "tick".to_owned(),
            payload: json!({ "n": n }),
        };
        hub.service().hub().send(message).await?;
    }
    Ok(())
}

/// A subscriber process: its own switchboard, positions in `snapshot`.
async fn subscribe(url: &str, snapshot: &std::path::Path) -> Result<Subscriber, Failure> {
    let positions = Snapshotter::start(Box::new(FileStore::new(snapshot)), FlushPolicy::Every)?;
    let board: Addr<Switchboard> = Switchboard::default().start();
    let mut config = ConnectionConfig::new(url);
    config.snapshotter = Some(positions.clone());
    let handle = board.send(Open(config)).await??;
    let pushes = handle.incoming(TOPIC, None, 1024);
    let reply = handle.join_recoverable(TOPIC, json!({}), false).await?;
    println!("joined {TOPIC}: {}", reply.response);
    Ok(Subscriber {
        handle,
        pushes,
        positions,
    })
}

impl Subscriber {
    /// Stops like a process that exits cleanly: positions flushed, socket closed.
    async fn stop(self) -> Result<(), Failure> {
        self.positions.send(Flush).await??;
        self.handle.close().await;
        Ok(())
    }
}

async fn take(pushes: &mut Pushes, count: usize) -> Result<Vec<u64>, Failure> {
    let mut sequences = Vec::new();
    while sequences.len() < count {
        let push = tokio::time::timeout(Duration::from_secs(5), pushes.recv())
            .await?
            .ok_or("pushes closed")?;
        sequences.push(
            push.payload.to_value()["sequence"]
                .as_u64()
                .ok_or("no sequence")?,
        );
    }
    Ok(sequences)
}

#[actix_web::main]
async fn main() -> Result<(), Failure> {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".to_owned();
    config.history.topics = vec!["room:feed:*".to_owned()];
    let router = ChannelRouter::rooms_with_history(&config.history.topics);
    let hub = HubService::builder(&config).router(router).start()?;
    let url = hub.socket_url();
    let dir = std::env::temp_dir().join(format!("switchboard-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let snapshot = dir.join("positions.json");

    let mut first = subscribe(&url, &snapshot).await?;
    broadcast(&hub, 1, 3).await?;
    let got = take(&mut first.pushes, 3).await?;
    println!("first subscriber got sequences {got:?}");
    first.stop().await?;

    broadcast(&hub, 4, 6).await?;
    let mut second = subscribe(&url, &snapshot).await?;
    let resumed = take(&mut second.pushes, 3).await?;
    println!("after a restart it resumed with {resumed:?}");
    if resumed != [4, 5, 6] {
        return Err(format!("expected [4, 5, 6], got {resumed:?}").into());
    }
    second.stop().await?;

    let board = Switchboard::default().start();
    let mut producer_config = ConnectionConfig::new(format!("ws://{}/ingest", hub.addr()));
    producer_config.producer = "probe-1".to_owned();
    let producer = board.send(OpenProducer(producer_config)).await??;
    let envelope = producer
        .publish("sensors:7", "reading", json!({ "celsius": 21.5 }), true)
        .await?;
    println!("published and acked: {}", envelope.to_value());
    // A resend (as after a lost ack) is acked again, not stored twice.
    producer.send_data(envelope.to_value()).await?;
    let dedup = hub.service().dedup_stats();
    println!(
        "hub: {} stored, {} duplicate acked without storing",
        dedup.admitted, dedup.duplicates
    );
    producer.close().await;
    hub.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
