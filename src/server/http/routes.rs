//! Where the hub's routes are mounted in an actix-web app.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::metrics;
use crate::server::http::admission::{headers_fit, refused};
use crate::server::http::endpoint;
use crate::server::http::health;
use crate::server::http::longpoll;
use crate::server::http::topic_reads;
use crate::server::service::HubService;

use crate::server::http::dashboard;

impl HubService {
    /// Mounts the Phoenix endpoint (at `server.path`), the ingest endpoint
    /// (at `server.ingest_path`), `GET /health`, `GET /history/{topic}`,
    /// `GET /presence/{topic}`, `GET /metrics` and, when `server.dashboard`
    /// names a path, the dashboard there; and makes this service available
    /// as `web::Data`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .route(&self.config().path, web::get().to(endpoint::phoenix_socket))
            .route(
                &self.config().ingest_path,
                web::get().to(endpoint::ingest_socket),
            )
            .service(
                web::resource(longpoll::longpoll_path(&self.config().path))
                    .app_data(web::PayloadConfig::new(self.config().max_frame_bytes))
                    .route(web::get().to(longpoll::poll))
                    .route(web::post().to(longpoll::post))
                    .route(web::method(actix_web::http::Method::OPTIONS).to(longpoll::preflight)),
            )
            .route("/health", web::get().to(health))
            .route("/history/{topic}", web::get().to(topic_reads::history))
            .route("/presence/{topic}", web::get().to(topic_reads::presence))
            .route("/metrics", web::get().to(metrics));
        // Last: a route above keeps its path whatever `server.dashboard` says.
        dashboard::mount(cfg, self);
    }
}

/// `GET /health`, behind `server.admin_token_env` when set.
async fn health(req: HttpRequest, service: web::Data<HubService>) -> HttpResponse {
    if let Err(refusal) = headers_fit(req.headers(), &service) {
        return refused(refusal);
    }
    if !service.admits_admin(&req) {
        return unauthorized();
    }
    let mut response = health::health(service.clone()).await;
    // Pages of an allowed origin may read it (phoenix.js apps check it).
    if let Some(origin) = longpoll::with_cors(&req, &service, HttpResponse::Ok())
        .finish()
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .cloned()
    {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    }
    response
}

/// `GET /metrics`, behind `server.admin_token_env` when set.
async fn metrics(req: HttpRequest, service: web::Data<HubService>) -> HttpResponse {
    if let Err(refusal) = headers_fit(req.headers(), &service) {
        return refused(refusal);
    }
    if !service.admits_admin(&req) {
        return unauthorized();
    }
    metrics::render().await
}

pub(super) fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .body("this route requires the admin token")
}
