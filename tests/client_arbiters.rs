//! A switchboard spreads its connections over arbiters of its own: each
//! connection works as on one thread (joins, receives, answers pushes,
//! rejoins after a hub restart), and the arbiters' threads end once the
//! switchboard and every handle of its connections are gone.

mod support;

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use actix::{Actor, Addr};
use serde_json::json;
use support::client::*;
use support::*;
use switchboard::client::{
    ConnectEvent, ConnectionConfig, ConnectionStatus, PhoenixHandle, Switchboard, TlsOptions,
};
use switchboard::protocol::phoenix::ReplyStatus;
use switchboard::transport::{AwcTransport, DialRequest, Dialing, Transport};
use tokio::sync::oneshot;

thread_local! {
    /// Dropped when its thread ends: each sender then tells its receiver.
    static ON_EXIT: RefCell<Vec<oneshot::Sender<()>>> = const { RefCell::new(Vec::new()) };
}

/// Dials over TCP, noting the thread of every dial (the connection's
/// arbiter) and a signal of that thread's end.
#[derive(Clone)]
struct ThreadProbe {
    inner: Arc<AwcTransport>,
    threads: Arc<Mutex<HashSet<ThreadId>>>,
    exits: Arc<Mutex<Vec<oneshot::Receiver<()>>>>,
    /// The test's own thread (the switchboard's arbiter): it never ends.
    home: ThreadId,
}

impl ThreadProbe {
    fn new() -> ThreadProbe {
        ThreadProbe {
            inner: Arc::new(AwcTransport::new(TlsOptions::default())),
            threads: Arc::default(),
            exits: Arc::default(),
            home: std::thread::current().id(),
        }
    }

    fn threads(&self) -> HashSet<ThreadId> {
        self.threads.lock().unwrap().clone()
    }

    /// Waits until every started thread that dialled has ended.
    async fn all_ended(&self) {
        let exits = std::mem::take(&mut *self.exits.lock().unwrap());
        assert!(!exits.is_empty(), "something dialled");
        for exit in exits {
            let ended = tokio::time::timeout(WAIT, exit).await;
            assert!(ended.is_ok(), "an arbiter's thread still runs");
        }
    }
}

impl Transport for ThreadProbe {
    fn dial(&self, request: DialRequest) -> Dialing {
        let thread = std::thread::current().id();
        if self.threads.lock().unwrap().insert(thread) && thread != self.home {
            let (tell, told) = oneshot::channel();
            ON_EXIT.with(|senders| senders.borrow_mut().push(tell));
            self.exits.lock().unwrap().push(told);
        }
        self.inner.dial(request)
    }
}

fn board(arbiters: usize) -> Addr<Switchboard> {
    Switchboard::builder()
        .arbiters(arbiters)
        .dials_per_second(10_000)
        .build()
        .start()
}

fn probed(url: &str, probe: &ThreadProbe) -> ConnectionConfig {
    let mut config = fast_config(url);
    config.transport = Some(Arc::new(probe.clone()));
    config
}

/// Every connection answers a ping and receives a broadcast on its topic.
async fn each_works(hub: &switchboard::server::RunningHub, handles: &[PhoenixHandle], round: u32) {
    let mut inboxes = Vec::new();
    for (n, handle) in handles.iter().enumerate() {
        let reply = handle
            .push("room:spread", "ping", json!({"n": n, "round": round}))
            .await
            .expect("ping answered");
        assert_eq!(reply.response, json!({"n": n, "round": round}));
        inboxes.push(handle.incoming("room:spread", Some("news"), 4));
    }
    // The handlers are registered through each connection's actor: a
    // round trip through it (a ping) means they are in place.
    for handle in handles {
        handle.push("room:spread", "ping", json!({})).await.unwrap();
    }
    let delivered = hub
        .service()
        .broadcast("room:spread", "news", &json!({"round": round}));
    assert_eq!(delivered, handles.len());
    for inbox in &mut inboxes {
        let news = tokio::time::timeout(WAIT, inbox.recv())
            .await
            .expect("news in time")
            .expect("inbox open");
        assert_eq!(news.payload, json!({"round": round}));
    }
}

#[actix_web::test]
async fn connections_spread_over_arbiters_and_each_still_works() {
    let first = start_hub(&test_config());
    let addr = first.addr();
    let probe = ThreadProbe::new();
    let board = board(4);
    let mut handles = Vec::new();
    for _ in 0..8 {
        let handle = open(&board, probed(&first.socket_url(), &probe)).await;
        let joined = handle.join("room:spread", json!({})).await.unwrap();
        assert_eq!(joined.status, ReplyStatus::Ok);
        handles.push(handle);
    }
    let threads = probe.threads();
    assert_eq!(threads.len(), 4, "round robin over the four arbiters");
    assert!(
        threads.contains(&std::thread::current().id()),
        "the switchboard's own arbiter is one of them"
    );
    each_works(&first, &handles, 1).await;

    let mut events: Vec<_> = handles.iter().map(|handle| handle.events()).collect();
    first.shutdown().await;
    let mut config = test_config();
    config.server.listen = addr.to_string();
    let second = start_hub(&config);
    for events in &mut events {
        let topic = wait_for(events, |event| match event {
            ConnectEvent::Rejoined { topic, .. } => Some(topic.clone()),
            _ => None,
        })
        .await;
        assert_eq!(topic, "room:spread");
    }
    assert_eq!(second.service().member_count("room:spread"), 8);
    each_works(&second, &handles, 2).await;
    assert_eq!(probe.threads(), threads, "redials stay on their arbiter");
}

#[actix_web::test]
async fn connections_outlive_the_switchboard_address_and_the_threads_end_with_the_last_handle() {
    let hub = start_hub(&test_config());
    let probe = ThreadProbe::new();
    let board = board(2);
    let mut handles = Vec::new();
    for _ in 0..4 {
        let handle = open(&board, probed(&hub.socket_url(), &probe)).await;
        handle.join("room:stop", json!({})).await.unwrap();
        handles.push(handle);
    }
    assert_eq!(probe.threads().len(), 2);
    let directory = board.send(switchboard::client::List).await.unwrap();
    assert_eq!(directory.len(), 4);
    drop(board);
    for handle in &handles {
        let reply = handle
            .push("room:stop", "ping", json!({"still": "up"}))
            .await;
        assert_eq!(reply.unwrap().response, json!({"still": "up"}));
    }
    assert_eq!(handles[0].status(), ConnectionStatus::Connected);
    drop(handles);
    probe.all_ended().await;
    // The two on the started arbiter went with its thread; the two on the
    // switchboard's own arbiter live on, as any actor of the application's
    // arbiter does, until closed or their system stops.
    assert!(
        eventually(|| hub.service().member_count("room:stop") == 2).await,
        "the hub saw the started arbiter's sockets go"
    );
}

#[actix_web::test]
async fn the_default_is_one_arbiter_per_core_and_zero_counts_as_one() {
    let hub = start_hub(&test_config());
    let probe = ThreadProbe::new();
    let single = board(0);
    for _ in 0..3 {
        let handle = open(&single, probed(&hub.socket_url(), &probe)).await;
        wait_connected(&handle).await;
    }
    assert_eq!(probe.threads().len(), 1);

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let probe = ThreadProbe::new();
    let default = Switchboard::default().start();
    for _ in 0..cores * 2 {
        let handle = open(&default, probed(&hub.socket_url(), &probe)).await;
        wait_connected(&handle).await;
    }
    assert_eq!(probe.threads().len(), cores);
}
