//! `idle_memory`: resident memory per idle connection, server side and
//! client side, each measured in a child process of its own.
//!
//! Server side: a child runs only the server (switchboard's hub, or the raw
//! echo server); this process opens the raw connections to it and reads the
//! child's VmRSS before and after. Client side: this process runs the
//! server; a child opens the connections (supervised switchboard
//! connections with the default `ConnectionConfig`, or raw sockets each read
//! by a task) and reads its own VmRSS before and after. Either way,
//! `(after - before) / connections`, in KiB, after a few warm-up connections.

use std::time::Duration;

use super::{alternate, first, loopback, Side};
use crate::baseline::client;
use crate::baseline::server::{BaselineServer, Mode};
use crate::child::{ChildProcess, ClientsRss, Kind, Listening, SETTLE, WARM_CONNECTIONS};
use crate::hub::{BenchHub, SinkChoice};
use crate::plan::Plan;
use crate::report::{Better, Row, Target};
use crate::rss::rss_kib;

/// Longest a child may take to report.
const REPORT_WITHIN: Duration = Duration::from_secs(180);

/// Runs the memory rows for every connection count of the plan.
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &connections in &plan.idle_connections {
        let server = alternate(1, &[Side::Switchboard, Side::Baseline], async |side| {
            server_side(kind(side), connections, plan).await
        })
        .await?;
        rows.push(
            Row::new(
                &format!("idle_memory_server_{connections}"),
                "KiB/connection",
                Better::Lower,
                first(&server[0]),
                first(&server[1]),
            )
            .with_target(Target::RatioAtMost { bound: 2.0 })
            .with_note("hub (or raw server) in a child process; raw idle clients, no topic joined"),
        );
        let clients = alternate(1, &[Side::Baseline, Side::Switchboard], async |side| {
            client_side(kind(side), connections, plan).await
        })
        .await?;
        rows.push(
            Row::new(
                &format!("idle_memory_client_{connections}"),
                "KiB/connection",
                Better::Lower,
                first(&clients[1]),
                first(&clients[0]),
            )
            .with_target(Target::RatioAtMost { bound: 1.5 })
            .with_note("supervised connections (default ConnectionConfig) or raw sockets in a child process"),
        );
    }
    Ok(rows)
}

/// The child kind of a side.
fn kind(side: Side) -> Kind {
    match side {
        Side::Baseline => Kind::Baseline,
        _ => Kind::Switchboard,
    }
}

/// The child's command line argument for `kind`.
fn kind_arg(kind: Kind) -> String {
    match kind {
        Kind::Switchboard => "switchboard",
        Kind::Baseline => "baseline",
    }
    .to_owned()
}

/// KiB per connection the server child grows by.
async fn server_side(kind: Kind, connections: usize, plan: &Plan) -> anyhow::Result<f64> {
    let mut child = ChildProcess::spawn(&["__serve".to_owned(), kind_arg(kind)])?;
    let listening: Listening = child.line(REPORT_WITHIN).await?;
    let url = match kind {
        Kind::Switchboard => format!("ws://{}/socket/websocket?vsn=2.0.0", listening.addr),
        Kind::Baseline => format!("ws://{}/", listening.addr),
    };
    let pid = child.pid()?;
    let warm = client::connect_many(&url, WARM_CONNECTIONS, plan.connect_parallel).await?;
    tokio::time::sleep(SETTLE).await;
    let before = rss_kib(pid)?;
    let held = client::connect_many(&url, connections, plan.connect_parallel).await?;
    tokio::time::sleep(SETTLE).await;
    let after = rss_kib(pid)?;
    drop(held);
    drop(warm);
    child.finish().await;
    Ok(after.saturating_sub(before) as f64 / connections as f64)
}

/// KiB per connection the client child grows by.
async fn client_side(kind: Kind, connections: usize, plan: &Plan) -> anyhow::Result<f64> {
    let (url, hub, server) = match kind {
        Kind::Switchboard => {
            let hub = BenchHub::start(loopback(), SinkChoice::InProcess)?;
            (hub.phoenix_url(), Some(hub), None)
        }
        Kind::Baseline => {
            let server = BaselineServer::start(loopback(), Mode::Echo)?;
            (server.url(), None, Some(server))
        }
    };
    let child = ChildProcess::spawn(&[
        "__clients".to_owned(),
        kind_arg(kind),
        url,
        connections.to_string(),
        plan.connect_parallel.to_string(),
    ]);
    let outcome = async {
        let mut child = child?;
        let rss: ClientsRss = child.line(REPORT_WITHIN).await?;
        child.finish().await;
        anyhow::Ok(rss)
    }
    .await;
    if let Some(hub) = hub {
        hub.kill().await;
    }
    if let Some(server) = server {
        server.stop();
    }
    let rss = outcome?;
    Ok(rss.after_kib.saturating_sub(rss.before_kib) as f64 / connections as f64)
}
