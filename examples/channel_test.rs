//! Testing an app's channel without sockets: the hub is built but not
//! served, and supervised clients reach it through a `MemoryTransport`.
//! The same checks, sessions, channels and broadcasts run as over TCP;
//! no port is opened.
//!
//! ```text
//! cargo run --example channel_test
//! ```
//!
//! The channel under test is a `Lounge`: members join with a password and
//! what one of them shouts reaches every member. The same body works as an
//! `#[actix_rt::test]` in an app's own tests.

use std::sync::Arc;

use actix::Actor;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard::client::{ConnectionConfig, JoinError, Open, PhoenixHandle, Switchboard};
use switchboard::config::Config;
use switchboard::protocol::{ChannelErrorCode, Payload};
use switchboard::server::{
    Channel, ChannelContext, ChannelFailure, ChannelRouter, HubService, Outcome, SocketInfo,
};
use switchboard::transport::MemoryTransport;

/// Members join with the right password; `shout` reaches everyone.
struct Lounge;

/// What a join may carry.
#[derive(Deserialize)]
struct Knock<'a> {
    password: Option<&'a str>,
}

impl Channel for Lounge {
    fn join(&self, _: &str, payload: &Payload, _: &SocketInfo) -> Result<Value, ChannelErrorCode> {
        // Parsed straight into a borrowed field: no `Value` is built.
        match payload.parse::<Knock>() {
            Ok(Knock {
                password: Some("open sesame"),
            }) => Ok(json!({"welcome": true})),
            _ => Err(ChannelErrorCode::Forbidden),
        }
    }

    fn handle_in(
        &self,
        event: &str,
        payload: &Payload,
        ctx: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        match event {
            // The shout goes out as the bytes it came in.
            "shout" => Ok(Outcome::Ok(
                json!({"heard_by": ctx.broadcast("shout", payload)}).into(),
            )),
            _ => Ok(Outcome::Error(ChannelErrorCode::NotFound)),
        }
    }
}

/// A client of `memory`'s hub.
async fn client(
    board: &actix::Addr<Switchboard>,
    memory: &MemoryTransport,
) -> Result<PhoenixHandle, Box<dyn std::error::Error>> {
    let mut config = ConnectionConfig::new("ws://hub/socket/websocket");
    config.transport = Some(Arc::new(memory.clone()));
    Ok(board.send(Open(config)).await??)
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = HubService::builder(&Config::default())
        .router(ChannelRouter::new().route("lounge:*", Lounge))
        .build()?;
    let memory = MemoryTransport::new(&hub);
    let board = Switchboard::default().start();
    let (ann, bea) = (
        client(&board, &memory).await?,
        client(&board, &memory).await?,
    );

    // The wrong password is refused with the channel's reason.
    match ann.join("lounge:1", json!({"password": "guess"})).await {
        Err(JoinError::Refused { reason, .. }) => println!("wrong password: refused ({reason})"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }
    let welcome = ann
        .join("lounge:1", json!({"password": "open sesame"}))
        .await?;
    bea.join("lounge:1", json!({"password": "open sesame"}))
        .await?;
    println!("right password: {}", welcome.response);

    // What Ann shouts, Bea hears; the reply says how many heard it.
    let mut heard = bea.incoming("lounge:1", Some("shout"), 16);
    let reply = ann.push("lounge:1", "shout", json!({"body": "hi"})).await?;
    let shout = heard.recv().await.ok_or("Bea's inbox closed")?;
    println!(
        "shout heard by {}: Bea got {}",
        reply.response["heard_by"], shout.payload
    );
    assert_eq!(reply.response, json!({"heard_by": 2}));

    // As if the network dropped: both redial and rejoin, the lounge goes on.
    let mut rejoined = bea.events();
    memory.cut();
    while !matches!(
        rejoined.recv().await?,
        switchboard::client::ConnectEvent::Rejoined { .. }
    ) {}
    let after = ann
        .push("lounge:1", "shout", json!({"body": "still here"}))
        .await;
    println!("after a cut: {}", after?.response);
    println!(
        "dials through memory: {}, TCP ports opened: none",
        memory.dials()
    );
    Ok(())
}
