//! The hub's own server runs the workers it is told: `.workers(n)`,
//! `server.workers`, `serve --workers`; 0 is refused, naming the key.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use serde_json::{json, Value};
use support::cli::binary;
use support::*;
use switchboard::config::Config;
use switchboard::protocol::{ChannelErrorCode, Payload};
use switchboard::server::{
    BuildError, Channel, ChannelContext, ChannelFailure, ChannelRouter, Credentials, HubService,
    Outcome, RoomChannel, SocketInfo, StartError,
};

/// A room that notes the thread each join is decided on (the socket's worker).
#[derive(Clone, Default)]
struct WorkerRoom {
    threads: Arc<Mutex<HashSet<ThreadId>>>,
}

impl Channel for WorkerRoom {
    fn join(
        &self,
        topic: &str,
        payload: &Payload,
        socket: &SocketInfo,
    ) -> Result<Value, ChannelErrorCode> {
        self.threads
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
        RoomChannel.join(topic, payload, socket)
    }

    fn handle_in(
        &self,
        event: &str,
        payload: &Payload,
        ctx: &ChannelContext<'_>,
    ) -> Result<Outcome, ChannelFailure> {
        RoomChannel.handle_in(event, payload, ctx)
    }
}

#[actix_web::test]
async fn a_hub_started_with_two_workers_serves_on_both() {
    let room = WorkerRoom::default();
    let hub = HubService::builder(&test_config())
        .router(ChannelRouter::new().route("room:*", room.clone()))
        .credentials(Credentials::Open)
        .workers(2)
        .start()
        .expect("hub starts");
    let mut clients = Vec::new();
    for n in 0..8 {
        let mut client = Client::to(&hub).await;
        let reply = client.join("room:workers", &n.to_string()).await;
        assert_eq!(reply[4]["status"], "ok", "{reply}");
        clients.push(client);
    }
    assert_eq!(room.threads.lock().unwrap().len(), 2, "accepted in turn");
    assert_eq!(
        hub.service()
            .broadcast("room:workers", "news", &json!({"all": true})),
        8
    );
    for client in &mut clients {
        let news = client.recv().await;
        assert_eq!(news[3], "news", "{news}");
        assert_eq!(news[4], json!({"all": true}));
    }
    hub.shutdown().await;
}

#[actix_web::test]
async fn zero_workers_are_refused_naming_the_key() {
    let refused = HubService::builder(&test_config()).workers(0).start();
    assert!(
        matches!(refused, Err(StartError::Build(BuildError::Workers))),
        "{:?}",
        refused.err()
    );
    let error = Config::from_toml("[server]\nworkers = 0\n")
        .unwrap()
        .validated()
        .unwrap_err();
    assert!(error.to_string().contains("server.workers"), "{error}");
    let three = Config::from_toml("[server]\nworkers = 3\n")
        .unwrap()
        .validated()
        .unwrap();
    assert_eq!(three.server.workers, Some(3));
    assert_eq!(Config::default().server.workers, None);

    let output = binary()
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.workers must be > 0"), "{stderr}");
}
