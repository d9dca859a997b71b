//! A join on a cluster node goes on once the node follows the topic (at
//! once when it does already): subscribed to the other nodes' broadcasts,
//! so none made after the client sees "ok" can miss it; and on a
//! recoverable topic with its copy caught up with the history stream, so
//! the reply's position and the replay are the cluster's, not this node's.

use std::sync::Arc;
use std::time::Duration;

use actix::fut::{wrap_future, ActorFutureExt};
use actix::AsyncContext;
use serde_json::Value;

use super::{Ctx, PhoenixSocket};
use crate::cluster::{Cluster, FeedJoin};
use crate::protocol::phoenix::{Frame, Reply};
use crate::protocol::ChannelErrorCode;
use crate::server::channel::Channel;
use crate::server::session::ServerSession;

/// How long a join waits for the node to follow its topic; then a plain
/// topic is joined anyway, a recoverable one refused.
const CATCH_UP: Duration = Duration::from_secs(5);

/// The error reason of a join the cluster could not serve in time.
pub(crate) const CLUSTER_UNAVAILABLE: &str = "cluster_unavailable";

impl PhoenixSocket {
    /// Joins at once when the node follows the topic; otherwise waits for
    /// it (the socket goes on reading meanwhile). `max_replay` is set on a
    /// recoverable topic.
    pub(super) fn join_in_cluster(
        &mut self,
        cluster: &Cluster,
        max_replay: Option<usize>,
        frame: Frame,
        response: Value,
        channel: Arc<dyn Channel>,
        ctx: &mut Ctx,
    ) {
        let feed = cluster.join_feed(&frame.topic);
        // A plain topic needs no stream: while NATS is away it is joined at
        // once (local members hear each other; the cluster when it is back).
        let plain_offline = max_replay.is_none() && !cluster.is_connected();
        if feed.is_ready() || plain_offline {
            return self.finish_join(&feed, max_replay, &frame, response, channel);
        }
        self.waiting
            .insert(frame.topic.clone(), frame.join_ref.clone());
        let caught_up = async move {
            let ready = feed.ready(CATCH_UP).await;
            (feed, ready)
        };
        let resume = wrap_future::<_, ServerSession<PhoenixSocket>>(caught_up).map(
            move |(feed, ready), session, _| {
                let socket = session.protocol();
                let current = socket.waiting.get(&frame.topic);
                if current != Some(&frame.join_ref) {
                    return; // left, replaced or closed meanwhile
                }
                socket.waiting.remove(&frame.topic);
                if ready || max_replay.is_none() {
                    socket.finish_join(&feed, max_replay, &frame, response, channel);
                } else {
                    tracing::warn!(topic = %frame.topic, "join refused: the cluster's history is not reachable");
                    metrics::counter!("switchboard_cluster_joins_refused_total").increment(1);
                    let code = ChannelErrorCode::Other(CLUSTER_UNAVAILABLE.to_owned());
                    let refused = Reply::error(&code);
                    socket.reply(frame.join_ref.as_deref(), &frame, refused);
                }
            },
        );
        ctx.spawn(resume);
    }

    fn finish_join(
        &mut self,
        feed: &FeedJoin,
        max_replay: Option<usize>,
        frame: &Frame,
        response: Value,
        channel: Arc<dyn Channel>,
    ) {
        let accepted = match max_replay {
            Some(max_replay) => self.join_resuming(feed.log(), max_replay, frame, response),
            None => self.join_plain(frame, response),
        };
        if accepted {
            self.keep_joined(channel, frame);
        }
    }
}
