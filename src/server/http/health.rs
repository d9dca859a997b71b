//! `GET /health`: `{healthy, status, details{mode, connections, topics,
//! queue, client, cluster}}`; `client` (the remote URL and whether a socket
//! to it is up) only in client mode, where exhausted redials make it
//! unhealthy; `cluster` only on a cluster node, whose status is `degraded`
//! (still healthy: local delivery goes on) while NATS is out of reach.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::cluster::ClusterHealth;
use crate::server::pull::PullHealth;
use crate::server::HubService;

/// The health report of a hub.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Health {
    /// False once the hub is draining.
    pub healthy: bool,
    /// `serving`, `draining`, or in client mode `connected`,
    /// `connecting`, `gave_up`.
    pub status: &'static str,
    /// Live figures.
    pub details: HealthDetails,
}

/// Live figures of a hub.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct HealthDetails {
    /// `server`, or `client` when it also pulls from a remote hub.
    pub mode: &'static str,
    /// Sockets open now.
    pub connections: usize,
    /// Topics with at least one member.
    pub topics: usize,
    /// The ingest queue.
    pub queue: QueueHealth,
    /// Client mode: the remote hub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<PullHealth>,
    /// A cluster node: its NATS link, peers and figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterHealth>,
}

/// The ingest queue's depth and utilization.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct QueueHealth {
    /// Items queued.
    pub depth: usize,
    /// depth / capacity.
    pub utilization: f64,
}

impl Health {
    /// Reads the hub's state.
    pub(crate) fn of(service: &HubService) -> Health {
        let registry = service.registry();
        let draining = registry.is_draining();
        let client = service.pull().map(|pull| pull.health());
        let cluster = registry.cluster().map(|cluster| cluster.health());
        let degraded = cluster.as_ref().is_some_and(|c| c.state != "connected");
        let status = match &client {
            _ if draining => "draining",
            // Local delivery goes on; the other nodes are out of reach.
            _ if degraded => "degraded",
            None => "serving",
            Some(pull) if pull.gave_up => "gave_up",
            Some(pull) if pull.connected => "connected",
            Some(_) => "connecting",
        };
        let queue = service.ingest().gauge.read();
        Health {
            healthy: !draining && !client.as_ref().is_some_and(|pull| pull.gave_up),
            status,
            details: HealthDetails {
                mode: if client.is_some() { "client" } else { "server" },
                connections: registry.connections(),
                topics: registry.topic_count(),
                queue: QueueHealth {
                    depth: queue.queue_depth,
                    utilization: queue.utilization,
                },
                client,
                cluster,
            },
        }
    }
}

/// actix-web handler: 200 while serving, 503 while draining.
pub(crate) async fn health(service: web::Data<HubService>) -> HttpResponse {
    let report = Health::of(&service);
    if report.healthy {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}
