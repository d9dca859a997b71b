//! Quickstart: an actix-web app that embeds a switchboard hub and keeps three
//! supervised client connections to it alive.
//!
//! ```text
//! cargo run --example quickstart            # the tour below, then exit 0
//! cargo run --example quickstart -- --serve # the same, then keep serving
//! ```
//!
//! The tour: start the app (hub at `/socket/websocket`, `POST
//! /broadcast/{topic}`, `/health`, `/metrics`); open three supervised
//! connections; join topics; exchange requests; broadcast through the app's
//! own HTTP route; restart the hub; watch every connection reconnect and
//! rejoin; print a summary.
//!
//! With `--serve` the app stays up for the official phoenix.js client:
//!
//! ```js
//! const socket = new Socket("ws://127.0.0.1:4000/socket", { transport: WebSocket });
//! socket.connect();
//! const channel = socket.channel("room:lobby");
//! channel.on("news", (payload) => console.log("news", payload));
//! channel.join().receive("ok", () => channel.push("ping", { hello: "hub" }));
//! ```
//!
//! ```text
//! curl -X POST localhost:4000/broadcast/room:lobby -H 'content-type: application/json' \
//!      -d '{"event": "news", "payload": {"body": "hello"}}'
//! ```
//!
//! `SWITCHBOARD_LISTEN` picks another address (default 127.0.0.1:4000).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::Actor;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard::client::{ConnectEvent, ConnectionConfig, Open, PhoenixHandle, Switchboard};
use switchboard::config::Config;
use switchboard::server::{Broadcast, ChannelRouter, HubService};

const TOPICS: [&str; 2] = ["room:lobby", "room:quickstart"];

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

/// The app: the hub's routes plus the app's own.
fn start_app(
    config: &Config,
    listen: &str,
) -> std::io::Result<(HubService, ServerHandle, SocketAddr)> {
    switchboard::install_prometheus_recorder();
    let hub = HubService::builder(config)
        .router(ChannelRouter::rooms())
        .build()
        .map_err(std::io::Error::other)?;
    let app_hub = hub.clone();
    let server = HttpServer::new(move || {
        App::new()
            .configure(|cfg| app_hub.configure(cfg))
            .route("/broadcast/{topic}", web::post().to(broadcast))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    // A close the hub starts ends the connection at once (the default lingers 1 s).
    .client_disconnect_timeout(Duration::from_millis(50))
    .bind(listen)?;
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((hub, handle, addr))
}

/// Waits until `handle` has rejoined every topic; returns when.
async fn rejoined_all(
    handle: &PhoenixHandle,
    events: &mut tokio::sync::broadcast::Receiver<ConnectEvent>,
    id: usize,
) -> Instant {
    let mut missing: Vec<&str> = TOPICS.to_vec();
    while !missing.is_empty() {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Ok(event)) => {
                println!(
                    "  connection {id}: {}",
                    serde_json::to_string(&event).unwrap_or_default()
                );
                if let ConnectEvent::Rejoined { topic, .. } = &event {
                    missing.retain(|wanted| wanted != topic);
                }
            }
            Ok(Err(_)) => continue,
            Err(_) => panic!(
                "connection {id} ({}) did not rejoin {missing:?} within 10 s",
                handle.url()
            ),
        }
    }
    Instant::now()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let keep_serving = std::env::args().any(|arg| arg == "--serve");
    let mut config = Config::default();
    if let Ok(listen) = std::env::var("SWITCHBOARD_LISTEN") {
        config.server.listen = listen;
    }
    let config = config.validated().map_err(std::io::Error::other)?;
    let (hub, server, addr) = start_app(&config, &config.server.listen)?;
    println!("switchboard quickstart: app listening on http://{addr}");
    println!(
        "  hub: ws://{addr}/socket/websocket   broadcast: POST http://{addr}/broadcast/{{topic}}"
    );

    // Three supervised connections to our own hub.
    let board = Switchboard::default().start();
    let url = format!("ws://{addr}/socket/websocket");
    let mut connections = Vec::new();
    for id in 1..=3 {
        let mut connection = ConnectionConfig::new(&url);
        connection.heartbeat_interval = Duration::from_secs(5);
        connection.reconnect.initial_interval = Duration::from_millis(100);
        connection.reconnect.max_interval = Duration::from_secs(2);
        let handle = board
            .send(Open(connection))
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)?;
        let events = handle.events();
        for topic in TOPICS {
            let reply = handle
                .join(topic, json!({"client": id}))
                .await
                .map_err(std::io::Error::other)?;
            println!("connection {id}: joined {topic} ({:?})", reply.status);
        }
        connections.push((id, handle, events));
    }

    // Requests and replies, then a broadcast through the app's own route.
    for (id, handle, _) in &connections {
        let reply = handle
            .push("room:lobby", "ping", json!({"from": id}))
            .await
            .map_err(std::io::Error::other)?;
        println!("connection {id}: ping answered {}", reply.response);
    }
    let mut news = connections[0].1.incoming("room:lobby", Some("news"), 16);
    let mut response = awc::Client::new()
        .post(format!("http://{addr}/broadcast/room:lobby"))
        .send_json(&json!({"event": "news", "payload": {"body": "hello from POST /broadcast"}}))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let delivered: Value = response
        .json()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    println!("POST /broadcast/room:lobby -> {delivered}");
    if let Ok(Some(push)) = tokio::time::timeout(Duration::from_secs(5), news.recv()).await {
        println!("connection 1: received {} {}", push.event, push.payload);
    }

    // Restart the hub on the same address: every socket is closed with 1012.
    println!("restarting the hub ...");
    let cut = Instant::now();
    hub.drain().await;
    server.stop(true).await;
    let (hub, server, _) = start_app(&config, &addr.to_string())?;
    let mut summary = Vec::new();
    for (id, handle, events) in &mut connections {
        let at = rejoined_all(handle, events, *id).await;
        summary.push((*id, at - cut));
    }
    println!(
        "\nsummary: hub restarted; every connection reconnected and rejoined {} topics",
        TOPICS.len()
    );
    for (id, after) in &summary {
        let handle = &connections[id - 1].1;
        let reply = handle
            .push("room:quickstart", "ping", json!({"after": "restart"}))
            .await
            .map_err(std::io::Error::other)?;
        println!(
            "  connection {id}: rejoined {:>4} ms after the cut, status {:?}, ping after restart {}",
            after.as_millis(),
            handle.status(),
            reply.response
        );
    }
    println!(
        "  hub now: {} connections, {} topics",
        hub.connections(),
        hub.topic_count()
    );

    if keep_serving {
        println!("\nserving on http://{addr} until Ctrl-C (join room:lobby with phoenix.js, POST /broadcast/room:lobby)");
        tokio::signal::ctrl_c().await?;
    }
    for (_, handle, _) in &connections {
        handle.close().await;
    }
    hub.drain().await;
    server.stop(true).await;
    Ok(())
}
