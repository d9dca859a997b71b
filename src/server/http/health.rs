//! `GET /health`: `{healthy, status, details{connections, topics}}`.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::server::HubService;

/// The health report of a hub.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Health {
    /// False once the hub is draining.
    pub healthy: bool,
    /// `serving` or `draining`.
    pub status: &'static str,
    /// Live figures.
    pub details: HealthDetails,
}

/// Live figures of a hub.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct HealthDetails {
    /// Sockets open now.
    pub connections: usize,
    /// Topics with at least one member.
    pub topics: usize,
}

impl Health {
    /// Reads the hub's state.
    pub(crate) fn of(service: &HubService) -> Health {
        let registry = service.registry();
        let draining = registry.is_draining();
        Health {
            healthy: !draining,
            status: if draining { "draining" } else { "serving" },
            details: HealthDetails {
                connections: registry.connections(),
                topics: registry.topic_count(),
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
