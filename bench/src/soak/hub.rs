//! The soak's hub process: what `switchboard serve --sink jetstream` runs
//! (the default `room:*` channels, the JetStream sink, a snapshot file),
//! plus a `tick` broadcast to [`ALL_TOPIC`] every [`TICK_EVERY`].
//!
//! It prints `{"addr": ...}` once listening. SIGTERM shuts it down
//! gracefully (sockets closed with 1012, the ingest queue drained) and it
//! exits 0; stdin closing (the parent gone) ends it at once.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use serde_json::json;
use switchboard::config::{Config, SinkType, SnapshotEvery};
use switchboard::server::HubService;
use switchboard::sink::Subjects;

use super::clients::ALL_TOPIC;
use crate::child::Listening;

/// The stream the hub's sink stores into.
pub const STREAM: &str = "SOAK";

/// Its data subject.
pub const DATA_SUBJECT: &str = "soak.data";

/// How often the hub broadcasts `tick` to every connection.
pub const TICK_EVERY: Duration = Duration::from_secs(2);

/// What the hub process was asked to run.
#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// Where to listen (the same port on every restart).
    pub listen: SocketAddr,
    /// The NATS server of the JetStream sink.
    pub nats_url: String,
    /// The snapshot file of sequence state (kept across restarts).
    pub snapshot: PathBuf,
}

/// The hub's config: the defaults, with the JetStream sink and the snapshot file.
fn config(args: &HubArgs) -> Config {
    let mut config = Config::default();
    config.server.listen = args.listen.to_string();
    config.sink.kind = SinkType::Jetstream;
    config.sink.url = args.nats_url.clone();
    config.sink.stream = STREAM.to_owned();
    config.sink.subjects = Subjects {
        data: DATA_SUBJECT.to_owned(),
        control: "soak.control".to_owned(),
    };
    config.snapshot.path = Some(args.snapshot.clone());
    config.snapshot.every = SnapshotEvery::Interval(Duration::from_secs(1));
    // The soak follows broadcasts; presence frames would only add noise.
    config.presence.rooms = false;
    config
}

/// Runs the hub process.
pub fn run(args: HubArgs) -> anyhow::Result<()> {
    // The parent holds stdin open; when it goes, so does the hub.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(3);
    });
    let config = config(&args);
    config.validate().map_err(|error| anyhow!("{error}"))?;
    actix_rt::System::new().block_on(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let sink = switchboard::sink::from_config(&config.sink)
            .await
            .map_err(|error| anyhow!("the JetStream sink: {error}"))?;
        let hub = HubService::builder(&config).sink(sink).start()?;
        let ticker = hub.service().clone();
        actix_rt::spawn(async move {
            let mut n = 0u64;
            loop {
                tokio::time::sleep(TICK_EVERY).await;
                n += 1;
                ticker.broadcast(ALL_TOPIC, "tick", &json!({ "n": n }));
            }
        });
        println!(
            "{}",
            serde_json::to_string(&Listening { addr: hub.addr() })?
        );
        terminate.recv().await;
        hub.shutdown().await;
        anyhow::Ok(())
    })?;
    std::process::exit(0)
}
