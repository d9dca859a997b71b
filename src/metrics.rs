//! Metrics: every counter goes through the `metrics` facade. Which recorder
//! receives them is the application's choice; [`install_prometheus_recorder`]
//! installs ours, which `GET /metrics` renders as Prometheus text.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs switchboard's Prometheus recorder as the process-global metrics
/// recorder, once; the hub's `GET /metrics` then renders it. Returns false
/// when another recorder was installed first (then `/metrics` answers 404 and
/// the metrics go to that recorder). The `switchboard` binary calls this at
/// start; an application that embeds the hub calls it if it wants `/metrics`.
///
/// ```
/// assert!(switchboard::install_prometheus_recorder());
/// ```
pub fn install_prometheus_recorder() -> bool {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .is_some()
}

/// actix-web handler: Prometheus text of every switchboard metric.
pub(crate) async fn render() -> HttpResponse {
    match HANDLE.get() {
        Some(Some(handle)) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render()),
        Some(None) => HttpResponse::NotFound().body("another metrics recorder is installed"),
        None => HttpResponse::NotFound().body(
            "no Prometheus recorder: call switchboard::install_prometheus_recorder() at start",
        ),
    }
}
