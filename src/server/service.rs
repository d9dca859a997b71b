//! `HubService`: the hub as an embeddable piece of an actix-web app.

use std::sync::Arc;

use actix::{Actor, Addr};

use super::channel::ChannelRouter;
use super::history::History;
use super::hub::{DrainSockets, Hub};
use super::registry::Registry;
use super::registry::{SenderRequest, SessionId};
use super::snapshot;
use super::stats::HubStats;
use crate::config::{BidirectionalConfig, Config, ServerConfig};
use crate::ingest::{
    Dedup, DedupStats, DrainQueue, DrainReport, GetQueueStatus, IngestQueue, IngestStats,
    QueueConfig, QueueGauge, QueueStatus,
};
use crate::protocol::envelope::Envelope;
use crate::sequence::Snapshotter;
use crate::server::auth::Credentials;
use crate::server::longpoll::LongPolls;
use crate::server::origin::Origin;
use crate::server::origin_warnings::OriginWarnings;
use crate::server::pull::Pull;
use crate::sink::Sink;
use crate::transport::RequestError;
use tokio::sync::Semaphore;

struct HubState {
    config: ServerConfig,
    /// Client mode's pulling side, once started.
    pull: std::sync::OnceLock<Arc<Pull>>,
    bidirectional: BidirectionalConfig,
    ingest: IngestParts,
    credentials: Credentials,
    /// `server.public_url`, parsed.
    public_origin: Option<Origin>,
    origin_warnings: OriginWarnings,
    longpolls: Arc<LongPolls>,
    /// What `/health` and `/metrics` require, when anything.
    admin: Option<Credentials>,
    router: ChannelRouter,
    registry: Arc<Registry>,
    stats: Arc<HubStats>,
    hub: Addr<Hub>,
    /// The dashboard's snapshot, shared by every worker, once shown.
    dashboard: std::sync::OnceLock<Arc<crate::server::http::dashboard::Board>>,
}

/// The ingest queue of a hub, and what senders need to reach it.
#[derive(Clone)]
pub(crate) struct IngestParts {
    /// The queue actor.
    pub queue: Addr<IngestQueue>,
    /// Under `block`, its admission semaphore.
    pub admission: Option<Arc<Semaphore>>,
    /// Its counters.
    pub stats: Arc<IngestStats>,
    /// The duplicate filter of sequenced messages (SEQ-9).
    pub dedup: Arc<Dedup>,
    /// Its figures as of its last change.
    pub gauge: Arc<QueueGauge>,
    /// The hub's snapshotter (`[snapshot]`).
    pub snapshotter: Addr<Snapshotter>,
}

/// A hub: its config, credentials, channels, directory, counters and actor.
/// Build it with [`HubService::builder`], clone it into every actix-web
/// worker and mount it with [`HubService::configure`].
///
/// ```no_run
/// use actix_web::{web, App, HttpResponse, HttpServer};
/// use serde_json::json;
/// use switchboard::config::Config;
/// use switchboard::server::HubService;
///
/// # #[actix_web::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = HubService::builder(&Config::default()).build()?;
/// let app_hub = hub.clone();
/// HttpServer::new(move || {
///     App::new()
///         .configure(|cfg| app_hub.configure(cfg))
///         .route("/announce", web::post().to(|hub: web::Data<HubService>| async move {
///             let members = hub.broadcast("room:lobby", "news", &json!({"body": "hi"}));
///             HttpResponse::Ok().json(json!({"delivered": members}))
///         }))
/// })
/// .bind("127.0.0.1:4000")?
/// .run()
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HubService {
    state: Arc<HubState>,
}

impl HubService {
    pub(crate) fn assemble(
        config: &Config,
        router: ChannelRouter,
        credentials: Credentials,
        sink: Arc<dyn Sink>,
        public_origin: Option<Origin>,
        admin: Option<Credentials>,
    ) -> HubService {
        let server = config.server.clone();
        let registry = Arc::new(
            Registry::new(server.max_connections)
                .with_history(History::new(&config.history))
                .with_presence(&config.presence),
        );
        if let Some(cluster) = &config.cluster {
            registry.set_cluster(crate::cluster::Cluster::start(
                cluster,
                &config.history,
                &registry,
            ));
        }
        let hub = Hub::new(
            registry.clone(),
            server.shutdown_batch,
            server.shutdown_batch_interval,
        )
        .start();
        let queue = IngestQueue::new(
            QueueConfig {
                queue_size: config.backpressure.queue_size,
                on_full: config.backpressure.on_full,
            },
            sink,
        );
        let (snapshotter, marks) = snapshot::open(&config.snapshot);
        let ingest = IngestParts {
            admission: queue.admission(),
            stats: queue.stats(),
            gauge: queue.gauge(),
            queue: queue.start(),
            snapshotter: snapshotter.clone(),
            dedup: Dedup::new(
                marks,
                Some(snapshotter),
                credentials.single_principal(),
                config.snapshot.producer_retention,
            ),
        };
        HubService {
            state: Arc::new(HubState {
                config: server,
                pull: std::sync::OnceLock::new(),
                bidirectional: config.bidirectional,
                ingest,
                credentials,
                public_origin,
                origin_warnings: OriginWarnings::default(),
                longpolls: Arc::default(),
                admin,
                router,
                registry,
                stats: Arc::new(HubStats::default()),
                hub,
                dashboard: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The hub actor: message it [`Broadcast`](super::Broadcast) from any
    /// actor.
    pub fn hub(&self) -> &Addr<Hub> {
        &self.state.hub
    }

    /// Sends `[null, null, topic, event, payload]` to every member of
    /// `topic` now, without a round trip to the hub actor; returns how many
    /// members it was queued for. A reserved event name (`phx_*`, presence)
    /// is refused: 0, counted and logged.
    ///
    /// On a cluster node (`[cluster]`) it reaches every node's members and
    /// answers this node's: at once on a plain topic; on a recoverable one
    /// once the history stream has stored and sequenced it.
    pub fn broadcast(&self, topic: &str, event: &str, payload: &serde_json::Value) -> usize {
        self.state.registry.broadcast(topic, event, payload, None)
    }

    /// [`broadcast`](Self::broadcast) to this node's members only, never
    /// sequenced (the same as `broadcast` on a hub without a cluster, on a
    /// plain topic).
    pub fn broadcast_local(&self, topic: &str, event: &str, payload: &serde_json::Value) -> usize {
        self.state.registry.broadcast_local(topic, event, payload)
    }

    /// This node's id, on a cluster node.
    pub fn node_id(&self) -> Option<&str> {
        self.state
            .registry
            .cluster()
            .map(|cluster| cluster.node_id())
    }

    /// Open sockets (Phoenix and ingest).
    pub fn connections(&self) -> usize {
        self.state.registry.connections()
    }

    /// Topics with at least one member.
    pub fn topic_count(&self) -> usize {
        self.state.registry.topic_count()
    }

    /// Makes an actor of the application a member of `topic`: from now on
    /// it gets every message on it as a [`TopicMessage`] (with its sequence
    /// on a recoverable topic), as a socket member would. Set the actor's
    /// mailbox capacity: a message it cannot take at once drops it from the
    /// topic (counted `switchboard_hub_actor_members_dropped_total`).
    /// Answers its member id, for [`leave_actor`](Self::leave_actor).
    /// Nothing is checked here (no channel's join runs): the app decides
    /// which of its actors may join what. A bounded mailbox bounds only the
    /// hub's side; what the actor itself buffers (a WebSocket it writes
    /// to) is the actor's to bound.
    ///
    /// [`TopicMessage`]: crate::server::TopicMessage
    pub fn join_actor(
        &self,
        topic: &str,
        member: actix::Recipient<crate::server::TopicMessage>,
    ) -> SessionId {
        let registry = &self.state.registry;
        let id = registry.next_session_id();
        registry.add_member(topic, id, crate::server::member::Member::Actor(member));
        id
    }

    /// Removes the actor member `id` from `topic`.
    pub fn leave_actor(&self, topic: &str, id: SessionId) {
        self.state.registry.unsubscribe(topic, id);
    }

    /// Who is on `topic` now, as `presence_state` carries it:
    /// `{key: {"metas": [{"phx_ref": ..., ...}]}}`.
    pub fn presence(&self, topic: &str) -> serde_json::Value {
        self.state.registry.presence().list(topic)
    }

    /// Members of `topic`.
    pub fn member_count(&self, topic: &str) -> usize {
        self.state.registry.member_count(topic)
    }

    /// The ingest sessions the hub can send requests to
    /// ([`request_sender`](Self::request_sender)), oldest first.
    pub fn ingest_senders(&self) -> Vec<SessionId> {
        self.state.registry.senders()
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.state.registry
    }

    pub(crate) fn bidirectional(&self) -> BidirectionalConfig {
        self.state.bidirectional
    }

    /// Sends a request to ingest sender `session` and waits for its reply.
    pub async fn request_sender(
        &self,
        session: SessionId,
        method: &str,
        params: serde_json::Value,
    ) -> Result<Envelope, RequestError> {
        let sender = self
            .state
            .registry
            .sender(session)
            .ok_or(RequestError::Closed)?;
        let request = SenderRequest {
            method: method.to_owned(),
            params,
        };
        sender
            .send(request)
            .await
            .unwrap_or(Err(RequestError::Closed))
    }

    pub(crate) fn ingest(&self) -> &IngestParts {
        &self.state.ingest
    }

    /// Starts pulling from `[client]` (client mode); once.
    pub(crate) fn start_pull(&self, config: &crate::config::ClientModeConfig) {
        self.state
            .pull
            .get_or_init(|| Pull::start(config, &self.state.ingest));
    }

    /// Client mode's pulling side, when the hub is in client mode.
    pub(crate) fn pull(&self) -> Option<&Pull> {
        self.state.pull.get().map(Arc::as_ref)
    }

    /// The ingest queue's counters.
    pub fn ingest_stats(&self) -> &Arc<IngestStats> {
        &self.state.ingest.stats
    }

    /// The ingest queue's depth and level now; `None` once its actor is gone.
    pub async fn queue_status(&self) -> Option<QueueStatus> {
        self.state.ingest.queue.send(GetQueueStatus).await.ok()
    }

    /// The duplicate filter's counters (exactly-once ingest).
    pub fn dedup_stats(&self) -> DedupStats {
        self.state.ingest.dedup.stats()
    }

    /// The hub's counters.
    pub fn stats(&self) -> &Arc<HubStats> {
        &self.state.stats
    }

    /// The server section of the config in force.
    pub fn config(&self) -> &ServerConfig {
        &self.state.config
    }

    pub(crate) fn dashboard_board(
        &self,
    ) -> &std::sync::OnceLock<Arc<crate::server::http::dashboard::Board>> {
        &self.state.dashboard
    }

    pub(crate) fn longpolls(&self) -> &Arc<LongPolls> {
        &self.state.longpolls
    }

    pub(crate) fn origin_warnings(&self) -> &OriginWarnings {
        &self.state.origin_warnings
    }

    pub(crate) fn public_origin(&self) -> Option<&Origin> {
        self.state.public_origin.as_ref()
    }

    /// Whether `req` may read `/health` and `/metrics`.
    pub(crate) fn admits_admin(&self, req: &actix_web::HttpRequest) -> bool {
        self.state
            .admin
            .as_ref()
            .is_none_or(|admin| admin.admits(req, None))
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.state.credentials
    }

    pub(crate) fn router(&self) -> &ChannelRouter {
        &self.state.router
    }

    /// Stops pulling (client mode), refuses new sockets, closes open ones
    /// with 1012 in batches, then lets the ingest queue deliver what it
    /// holds (bounded by `timeout`).
    pub async fn drain_all(&self, timeout: std::time::Duration) -> Option<DrainReport> {
        self.stop_pulling().await;
        self.drain().await;
        self.state
            .ingest
            .queue
            .send(DrainQueue { timeout })
            .await
            .ok()
    }

    /// In client mode, closes the connection to the remote hub.
    pub(crate) async fn stop_pulling(&self) {
        if let Some(pull) = self.state.pull.get() {
            pull.stop().await;
        }
    }

    /// Refuses new sockets from now on; open ones stay.
    pub fn refuse_new_sockets(&self) {
        self.state.registry.start_draining();
    }

    /// Refuses new sockets and closes open ones with 1012 in batches. On a
    /// cluster node the others are told it drains; its presences stay
    /// until it has been gone for `cluster.down_after`, so its clients can
    /// join elsewhere without leaving.
    pub async fn drain(&self) {
        if let Some(cluster) = self.state.registry.cluster() {
            cluster.start_draining();
        }
        if self
            .state
            .hub
            .send(DrainSockets { code: 1012 })
            .await
            .is_err()
        {
            // The hub actor is gone (its system stopped): refuse new sockets at least.
            self.state.registry.start_draining();
        }
    }
}
