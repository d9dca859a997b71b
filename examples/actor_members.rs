//! An app's own WebSocket actors as hub members: a chat session built on
//! actix-web-actors, with its own JSON protocol at `/chat`, joins hub
//! topics with `HubService::join_actor`, receives what Phoenix clients
//! broadcast there, and publishes into them.
//!
//! ```text
//! cargo run --example actor_members             # the tour below, then exit 0
//! cargo run --example actor_members -- --serve  # the same app, kept serving
//! ```
//!
//! The session's protocol, one JSON object per text frame:
//! `{"join": "room:lobby"}` (answered `{"joined": "room:lobby"}`),
//! `{"say": "hi", "topic": "room:lobby"}` (broadcast there as event `say`,
//! payload `{"body": "hi"}`); every message on a joined topic arrives as
//! `{"topic": ..., "event": ..., "payload": ...}`.
//!
//! The tour: a plain WebSocket client joins `room:lobby` through `/chat`, a
//! supervised Phoenix client joins it through `/socket/websocket`; each
//! hears the other. `SWITCHBOARD_LISTEN` picks the address of `--serve`
//! (default 127.0.0.1:4001).

use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Handler, StreamHandler};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard::client::{ConnectionConfig, Open, Switchboard};
use switchboard::config::Config;
use switchboard::server::{HubService, SessionId, TopicMessage};

/// One `/chat` socket: an actix-web-actors session that is a hub member.
struct ChatSession {
    hub: HubService,
    joined: Vec<(String, SessionId)>,
}

impl Actor for ChatSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A member that cannot take a message at once is dropped by the hub.
        ctx.set_mailbox_capacity(1024);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for (topic, id) in self.joined.drain(..) {
            self.hub.leave_actor(&topic, id);
        }
    }
}

impl Handler<TopicMessage> for ChatSession {
    type Result = ();

    fn handle(&mut self, msg: TopicMessage, ctx: &mut Self::Context) {
        let frame = json!({"topic": msg.topic, "event": msg.event, "payload": msg.payload});
        ctx.text(frame.to_string());
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ChatSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match item {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(_) => ctx.stop(),
        }
    }
}

impl ChatSession {
    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            return ctx.text(json!({"error": "not JSON"}).to_string());
        };
        // join_actor checks nothing: the app decides who may join what. This
        // one allows its rooms only, each once, and speaking where joined.
        let joined = |topic: &str| self.joined.iter().any(|(t, _)| t == topic);
        if let Some(topic) = request["join"].as_str() {
            if !topic.starts_with("room:") || topic.len() > 64 || self.joined.len() >= 16 {
                return ctx.text(json!({"error": "rooms only, at most 16"}).to_string());
            }
            if !joined(topic) {
                let id = self.hub.join_actor(topic, ctx.address().recipient());
                self.joined.push((topic.to_owned(), id));
            }
            ctx.text(json!({ "joined": topic }).to_string());
        } else if let (Some(body), Some(topic)) =
            (request["say"].as_str(), request["topic"].as_str())
        {
            if joined(topic) {
                self.hub.broadcast(topic, "say", &json!({ "body": body }));
            }
        } else {
            ctx.text(json!({"error": "expected join or say"}).to_string());
        }
    }
}

async fn chat(
    req: HttpRequest,
    stream: web::Payload,
    hub: web::Data<HubService>,
) -> Result<HttpResponse, actix_web::Error> {
    let session = ChatSession {
        hub: hub.get_ref().clone(),
        joined: Vec::new(),
    };
    ws::start(session, &req, stream)
}

/// The app: the hub's routes and `/chat`, on `listen`.
fn serve(
    hub: HubService,
    listen: &str,
) -> std::io::Result<(actix_web::dev::Server, std::net::SocketAddr)> {
    let server = HttpServer::new(move || {
        let hub = hub.clone();
        App::new()
            .configure(|cfg| hub.configure(cfg))
            .route("/chat", web::get().to(chat))
    })
    .workers(1)
    .disable_signals()
    .client_disconnect_timeout(Duration::from_millis(50))
    .bind(listen)?;
    let addr = server.addrs()[0];
    Ok((server.run(), addr))
}

/// A plain WebSocket client of `/chat`, joined to `topic`.
async fn chat_client(
    addr: std::net::SocketAddr,
    topic: &str,
) -> Result<actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>, Box<dyn std::error::Error>> {
    let (_, mut socket) = awc::Client::new()
        .ws(format!("ws://{addr}/chat"))
        .connect()
        .await
        .map_err(|error| error.to_string())?;
    let join = json!({ "join": topic }).to_string();
    socket.send(awc::ws::Message::Text(join.into())).await?;
    let joined = next_json(&mut socket).await?;
    if joined["joined"] != topic {
        return Err(format!("unexpected answer to join: {joined}").into());
    }
    Ok(socket)
}

/// The next JSON text frame of `socket`, within 5 s.
async fn next_json(
    socket: &mut actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
) -> Result<Value, Box<dyn std::error::Error>> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await?
            .ok_or("the chat socket closed")??;
        if let awc::ws::Frame::Text(bytes) = frame {
            return Ok(serde_json::from_slice(&bytes)?);
        }
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = HubService::builder(&Config::default()).build()?;
    if std::env::args().any(|arg| arg == "--serve") {
        let listen =
            std::env::var("SWITCHBOARD_LISTEN").unwrap_or_else(|_| "127.0.0.1:4001".to_owned());
        let (server, addr) = serve(hub, &listen)?;
        println!("serving /chat and the hub on http://{addr} until Ctrl-C");
        actix_web::rt::spawn(server);
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }
    let (server, addr) = serve(hub, "127.0.0.1:0")?;
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let mut plain = chat_client(addr, "room:lobby").await?;
    let board = Switchboard::default().start();
    let phoenix = board
        .send(Open(ConnectionConfig::new(format!(
            "ws://{addr}/socket/websocket"
        ))))
        .await??;
    let mut said = phoenix.incoming("room:lobby", Some("say"), 16);
    phoenix.join("room:lobby", json!({})).await?;

    phoenix
        .push("room:lobby", "shout", json!({"body": "hi from phoenix"}))
        .await?;
    let heard = loop {
        let frame = next_json(&mut plain).await?;
        if frame["event"] == "shout" {
            break frame;
        }
    };
    println!("the actix-web-actors session heard: {}", heard["payload"]);

    let say = json!({"say": "hi from actix-web-actors", "topic": "room:lobby"}).to_string();
    plain.send(awc::ws::Message::Text(say.into())).await?;
    let message = tokio::time::timeout(Duration::from_secs(5), said.recv())
        .await?
        .ok_or("the phoenix client's inbox closed")?;
    println!("the phoenix client heard: {}", message.payload);
    handle.stop(true).await;
    Ok(())
}

// The integration tests' peers (phoenix.js under node), shared with them.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/support/nats.rs"]
mod nats;
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/support/peers.rs"]
mod peers;
#[cfg(test)]
const WAIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::peers::{node_ready, PhoenixPeer};
    use super::*;

    /// phoenix.js and a plain WebSocket client hear each other through a
    /// hub topic the actix-web-actors session joined.
    #[actix_web::test]
    async fn phoenix_js_and_an_actix_web_actors_session_share_a_topic() {
        if !node_ready("phoenix_js_and_an_actix_web_actors_session_share_a_topic") {
            return;
        }
        let hub = HubService::builder(&Config::default())
            .build()
            .expect("hub");
        let (server, addr) = serve(hub.clone(), "127.0.0.1:0").expect("binds");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let url = format!("ws://{addr}/socket/websocket");

        // The actor member hears what phoenix.js broadcasts.
        let mut plain = chat_client(addr, "room:lobby").await.expect("joins /chat");
        let shout = PhoenixPeer::start(
            "broadcast",
            &url,
            &["--topic", "room:lobby", "--count", "1"],
        );
        let heard = loop {
            let frame = next_json(&mut plain).await.expect("a frame");
            if frame["event"] == "shout" {
                break frame;
            }
        };
        assert_eq!(heard["payload"], json!({"body": "hi"}));
        shout.result().await;

        // phoenix.js hears what the actor member publishes.
        let mut listener = PhoenixPeer::listen(&url, &["--topic", "room:lobby", "--event", "say"]);
        assert_eq!(listener.next_line().await["event"], "joined");
        let say = json!({"say": "from the actor", "topic": "room:lobby"}).to_string();
        plain
            .send(awc::ws::Message::Text(say.into()))
            .await
            .expect("sent");
        let result = listener.result().await;
        assert_eq!(result["payload"], json!({"body": "from the actor"}));

        // Once the phoenix.js sockets are gone the session is the one
        // member; when its socket closes, it leaves the topic too.
        let members = |count: usize| {
            let hub = hub.clone();
            tokio::time::timeout(Duration::from_secs(5), async move {
                while hub.member_count("room:lobby") != count {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        assert!(members(1).await.is_ok(), "the session is a member");
        drop(plain);
        assert!(
            members(0).await.is_ok(),
            "the closed session left the topic"
        );
        handle.stop(true).await;
    }
}
