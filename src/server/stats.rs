//! Plain atomic counters of what the hub refused, closed and dropped.
//!
//! Every count is mirrored to the `metrics` facade (exported as Prometheus
//! text by `/metrics`); the atomics let embedding apps and tests read one
//! hub's figures without a recorder.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why an upgrade request was refused before the socket was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Refusal {
    /// Missing or unsupported `vsn` (403).
    BadVersion,
    /// Credentials missing or wrong (401).
    Unauthorized,
    /// Origin not allowed (403).
    Origin,
    /// `max_connections` reached, or the hub is draining (503).
    Capacity,
    /// The query string is longer than `server.max_query_bytes` (414).
    QueryTooLong,
    /// The request's headers add up to more than `server.max_header_bytes`
    /// (431).
    HeadersTooLarge,
    /// `server.max_pending_upgrades` connections were already open and not
    /// upgraded: the new one was shut at once.
    PendingUpgrades,
}

/// Why the hub closed a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum CloseCause {
    /// The peer stopped reading and its outbound queue overflowed (1013).
    SlowConsumer,
    /// An inbound frame was larger than `max_frame_bytes` (1009).
    FrameTooLarge,
    /// No inbound frame within `idle_timeout` (1001).
    Idle,
    /// A binary frame arrived; the hub speaks JSON text (1003).
    BinaryFrame,
    /// A text frame was not valid UTF-8 (1007).
    InvalidText,
    /// The WebSocket framing itself was broken (1002).
    ProtocolError,
    /// The hub is shutting down (1012).
    Shutdown,
    /// The peer sent faster than `server.inbound_rate` allows, under
    /// `on_exceed = "close"` (1008).
    RateLimited,
}

/// Why the hub stopped reading a socket for a while (TCP then pushes back
/// on the peer); nothing is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Throttle {
    /// Answers were backing up in the socket's outbox: the peer is not
    /// reading them.
    Answers,
    /// An ingest sender owed a quarter of its outbox in acks: the sink has
    /// to accept some first.
    Owed,
}

/// A frame that was dropped or answered with an error instead of being routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum FrameProblem {
    /// Not JSON.
    InvalidJson,
    /// JSON, but not a five-element V2 array of the right types.
    Malformed,
    /// The payload is not a JSON object.
    InvalidPayload,
    /// A non-null join_ref that is not the topic's current one.
    StaleJoinRef,
    /// A join of an unrouted topic, or an event on an unjoined topic.
    UnmatchedTopic,
    /// A join refused by the socket's channel cap.
    TooManyChannels,
    /// A channel handler failed or panicked (`phx_error` sent).
    HandlerFailed,
    /// A client event named like one of the protocol's own (`phx_*`,
    /// presence), refused with `reserved event`.
    ReservedEvent,
    /// Over `server.inbound_rate`: refused with `rate_limited`.
    RateLimited,
}

impl Refusal {
    /// Number of variants (the last one's index + 1).
    const COUNT: usize = Refusal::PendingUpgrades as usize + 1;

    /// Stable metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::BadVersion => "bad_version",
            Refusal::Unauthorized => "unauthorized",
            Refusal::Origin => "origin",
            Refusal::Capacity => "capacity",
            Refusal::QueryTooLong => "query_too_long",
            Refusal::HeadersTooLarge => "headers_too_large",
            Refusal::PendingUpgrades => "pending_upgrades",
        }
    }
}

impl CloseCause {
    /// Number of variants (the last one's index + 1).
    const COUNT: usize = CloseCause::RateLimited as usize + 1;

    /// Stable metric label.
    pub fn label(self) -> &'static str {
        match self {
            CloseCause::SlowConsumer => "slow_consumer",
            CloseCause::FrameTooLarge => "frame_too_large",
            CloseCause::Idle => "idle",
            CloseCause::BinaryFrame => "binary_frame",
            CloseCause::InvalidText => "invalid_text",
            CloseCause::ProtocolError => "protocol_error",
            CloseCause::Shutdown => "shutdown",
            CloseCause::RateLimited => "rate_limited",
        }
    }
}

impl FrameProblem {
    /// Number of variants (the last one's index + 1).
    const COUNT: usize = FrameProblem::RateLimited as usize + 1;

    /// Stable metric label.
    pub fn label(self) -> &'static str {
        match self {
            FrameProblem::InvalidJson => "invalid_json",
            FrameProblem::Malformed => "malformed",
            FrameProblem::InvalidPayload => "invalid_payload",
            FrameProblem::StaleJoinRef => "stale_join_ref",
            FrameProblem::UnmatchedTopic => "unmatched_topic",
            FrameProblem::TooManyChannels => "too_many_channels",
            FrameProblem::HandlerFailed => "handler_failed",
            FrameProblem::ReservedEvent => "reserved_event",
            FrameProblem::RateLimited => "rate_limited",
        }
    }
}

impl Throttle {
    /// Number of variants (the last one's index + 1).
    const COUNT: usize = Throttle::Owed as usize + 1;

    /// Stable metric label.
    pub fn label(self) -> &'static str {
        match self {
            Throttle::Answers => "answers_unread",
            Throttle::Owed => "acks_owed",
        }
    }
}

/// Counters of one hub.
#[derive(Debug, Default)]
pub struct HubStats {
    refusals: [AtomicU64; Refusal::COUNT],
    closes: [AtomicU64; CloseCause::COUNT],
    problems: [AtomicU64; FrameProblem::COUNT],
    throttles: [AtomicU64; Throttle::COUNT],
}

impl HubStats {
    /// Counts a refused upgrade.
    pub fn refused(&self, refusal: Refusal) {
        self.refusals[refusal as usize].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_upgrades_refused_total", "reason" => refusal.label())
            .increment(1);
    }

    /// Counts a socket the hub closed.
    pub fn closed(&self, cause: CloseCause) {
        self.closes[cause as usize].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_sockets_closed_total", "reason" => cause.label())
            .increment(1);
    }

    /// Counts a frame that was not routed normally.
    pub fn frame_problem(&self, problem: FrameProblem) {
        self.problems[problem as usize].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_frames_rejected_total", "reason" => problem.label())
            .increment(1);
    }

    /// Counts a pause in reading a socket.
    pub fn throttled(&self, throttle: Throttle) {
        self.throttles[throttle as usize].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("switchboard_reads_paused_total", "reason" => throttle.label())
            .increment(1);
    }

    /// How many times reading paused for `throttle`.
    pub fn throttles(&self, throttle: Throttle) -> u64 {
        self.throttles[throttle as usize].load(Ordering::Relaxed)
    }

    /// How many upgrades were refused for `refusal`.
    pub fn refusals(&self, refusal: Refusal) -> u64 {
        self.refusals[refusal as usize].load(Ordering::Relaxed)
    }

    /// How many sockets were closed for `cause`.
    pub fn closes(&self, cause: CloseCause) -> u64 {
        self.closes[cause as usize].load(Ordering::Relaxed)
    }

    /// How many frames had `problem`.
    pub fn problems(&self, problem: FrameProblem) -> u64 {
        self.problems[problem as usize].load(Ordering::Relaxed)
    }
}
