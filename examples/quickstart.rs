//! Quickstart: an actix-web app that embeds a switchboard hub.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Then, from a browser or Node with the `phoenix` client:
//!
//! ```js
//! const socket = new Socket("ws://127.0.0.1:4000/socket", { transport: WebSocket });
//! socket.connect();
//! const channel = socket.channel("room:lobby");
//! channel.on("news", (payload) => console.log("news", payload));
//! channel.join().receive("ok", () => channel.push("ping", { hello: "hub" }));
//! ```
//!
//! and broadcast from the app's own HTTP API:
//!
//! ```text
//! curl -X POST localhost:4000/broadcast/room:lobby -H 'content-type: application/json' \
//!      -d '{"event": "news", "payload": {"body": "hello"}}'
//! ```
//!
//! `SWITCHBOARD_LISTEN` picks another address; Ctrl-C stops it.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard::config::Config;
use switchboard::server::{Broadcast, ChannelRouter, HubService};

/// Body of `POST /broadcast/{topic}`.
#[derive(Deserialize)]
struct BroadcastBody {
    #[serde(default = "default_event")]
    event: String,
    #[serde(default)]
    payload: Value,
}

fn default_event() -> String {
    "broadcast".to_owned()
}

/// An ordinary actix-web handler that messages the hub.
async fn broadcast(
    topic: web::Path<String>,
    body: web::Json<BroadcastBody>,
    hub: web::Data<HubService>,
) -> HttpResponse {
    let BroadcastBody { event, payload } = body.into_inner();
    let payload = if payload.is_object() {
        payload
    } else {
        json!({ "value": payload })
    };
    let topic = topic.into_inner();
    match hub
        .hub()
        .send(Broadcast {
            topic: topic.clone(),
            event,
            payload,
        })
        .await
    {
        Ok(delivered) => HttpResponse::Ok().json(json!({ "topic": topic, "delivered": delivered })),
        Err(error) => {
            HttpResponse::ServiceUnavailable().json(json!({ "error": error.to_string() }))
        }
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    switchboard::metrics::install();
    let mut config = Config::default();
    if let Ok(listen) = std::env::var("SWITCHBOARD_LISTEN") {
        config.server.listen = listen;
    }
    let config = config.validated().map_err(std::io::Error::other)?;
    let hub = HubService::new(&config, ChannelRouter::rooms()).map_err(std::io::Error::other)?;
    let app_hub = hub.clone();
    let server = HttpServer::new(move || {
        App::new()
            .configure(|cfg| app_hub.configure(cfg))
            .route("/broadcast/{topic}", web::post().to(broadcast))
    })
    .bind(&config.server.listen)?;
    for addr in server.addrs() {
        println!("switchboard quickstart listening on http://{addr}");
        println!("  phoenix.js:  new Socket(\"ws://{addr}/socket\", {{ transport: WebSocket }})");
        println!(
            "  join:        room:lobby (any room:* topic), push \"ping\" to get your payload back"
        );
        println!("  broadcast:   curl -X POST http://{addr}/broadcast/room:lobby -H 'content-type: application/json' -d '{{\"event\":\"news\",\"payload\":{{\"body\":\"hello\"}}}}'");
        println!("  health:      http://{addr}/health   metrics: http://{addr}/metrics");
    }
    println!("Ctrl-C to stop.");
    server.run().await
}
