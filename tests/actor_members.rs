//! PHX-S18. Any actix actor as a topic member: it gets each message as a
//! `TopicMessage` (with its sequence on a recoverable topic), counts as a
//! member, and is dropped, not queued for, when its mailbox is full.

mod support;

use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};
use serde_json::json;
use support::*;
use switchboard::server::{HubService, TopicMessage};
use tokio::sync::mpsc;

/// Forwards what it gets; with `stall`, takes one message then stops
/// handling any (its mailbox of `capacity` fills).
struct Member {
    seen: mpsc::UnboundedSender<TopicMessage>,
    capacity: usize,
    stall: bool,
}

impl Actor for Member {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.capacity);
    }
}

impl Handler<TopicMessage> for Member {
    type Result = ();

    fn handle(&mut self, msg: TopicMessage, ctx: &mut Context<Self>) {
        let _ = self.seen.send(msg);
        if self.stall {
            ctx.wait(
                tokio::time::sleep(Duration::from_secs(3600))
                    .into_actor(self)
                    .map(|_, _, _| ()),
            );
        }
    }
}

#[actix_web::test]
async fn phx_s18_actors_are_members_with_sequences_and_a_full_mailbox_drops_them() {
    let mut config = test_config();
    config.history.topics = vec!["room:feed:*".to_owned()];
    let hub = HubService::builder(&config).build().expect("hub");
    let (seen, mut received) = mpsc::unbounded_channel();
    let member = Member {
        seen,
        capacity: 64,
        stall: false,
    }
    .start();
    let id = hub.join_actor("room:feed:1", member.recipient());
    assert_eq!(hub.member_count("room:feed:1"), 1);
    for n in 1..=3 {
        assert_eq!(hub.broadcast("room:feed:1", "item", &json!({ "n": n })), 1);
    }
    for n in 1..=3u64 {
        let msg = tokio::time::timeout(WAIT, received.recv())
            .await
            .expect("in time")
            .expect("open");
        assert_eq!(
            (msg.topic.as_str(), msg.event.as_str(), msg.sequence),
            ("room:feed:1", "item", Some(n))
        );
        assert_eq!(msg.payload["payload"], json!({ "n": n }));
    }
    hub.leave_actor("room:feed:1", id);
    assert_eq!(hub.member_count("room:feed:1"), 0);

    // A member that stops taking messages: dropped once its mailbox is full.
    let (seen, _kept) = mpsc::unbounded_channel();
    let stalled = Member {
        seen,
        capacity: 4,
        stall: true,
    }
    .start();
    hub.join_actor("room:lobby", stalled.recipient());
    let mut delivered = 0;
    for n in 0..100 {
        delivered += hub.broadcast("room:lobby", "news", &json!({ "n": n }));
    }
    assert!(
        delivered < 100,
        "some were refused, none queued without bound: {delivered}"
    );
    assert_eq!(
        hub.member_count("room:lobby"),
        0,
        "the stalled member was dropped"
    );
}

#[actix_web::test]
async fn phx_s18_an_actor_dropped_during_a_presence_diff_does_not_stall_the_topic() {
    // The default rooms track presence: every join fans a diff out to the
    // stalled actor too, which is dropped from inside that fan-out.
    let hub = HubService::builder(&test_config()).start().expect("hub");
    let (seen, _kept) = mpsc::unbounded_channel();
    let stalled = Member {
        seen,
        capacity: 1,
        stall: true,
    }
    .start();
    hub.service().join_actor("room:p", stalled.recipient());
    let board = support::client::switchboard();
    let mut clients = Vec::new();
    for n in 0..5 {
        let handle =
            support::client::open(&board, support::client::fast_config(&hub.socket_url())).await;
        let joined = tokio::time::timeout(
            WAIT,
            handle.join("room:p", json!({ "user": format!("u{n}") })),
        );
        joined.await.expect("the join is answered").expect("joined");
        clients.push(handle);
    }
    assert!(
        eventually(|| hub.service().member_count("room:p") == 5).await,
        "the actor was dropped"
    );
    assert_eq!(
        hub.service()
            .presence("room:p")
            .as_object()
            .map(|keys| keys.len()),
        Some(5)
    );
}
