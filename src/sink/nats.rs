//! Sinks that publish into NATS: core NATS (fire and forget) and JetStream
//! (stored, acknowledged and deduplicated).
//!
//! Both modes publish `data` items to `subjects.data` and control items to
//! `subjects.control`, the payload unchanged (JSON text).
//!
//! - **Core NATS** (`jetstream` unset, [`Sink::name`] `nats`): the outer
//!   future of [`Sink::send`] resolves once the publish is queued on the
//!   client, [`Accepted`] once the client has flushed it to the server's
//!   socket.
//! - **JetStream** (`jetstream` set, name `jetstream`): the outer future
//!   resolves once the publish request is queued on the client, [`Accepted`]
//!   once the stream has stored the item (its `PubAck`).
//!
//! Items reach the client in the order their outer futures complete, which is
//! call order when each is awaited before the next `send`. A batch
//! ([`Sink::send_batch`], what the ingest queue uses) is published in its
//! order without waiting in between, and its confirmations are awaited
//! together, under one deadline for the batch: no task and no timer of
//! this sink's per item.
//!
//! Core NATS has no acknowledgement: an item that was flushed just before the
//! connection dropped may be lost, and a subject nobody listens to drops it.
//! Use JetStream where items must survive.
//!
//! In JetStream mode every item carries its id as `Nats-Msg-Id`, so an item
//! sent again (after a timeout, a reconnect or a restart of the queue) is
//! stored once as long as it arrives within the stream's duplicate window
//! (two minutes on streams this sink creates), and `Nats-Expected-Stream`, so
//! an item never lands in another stream by accident.
//!
//! The client reconnects by itself. While it is disconnected every send
//! fails at once with [`SinkError::Unavailable`], and every wait is bounded by
//! `ack_timeout` ([`SinkError::Timeout`]): an outage shows as retryable errors,
//! never as a hang.

use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamByNameErrorKind};
use async_nats::jetstream::{self, stream};
use async_nats::{ConnectErrorKind, Subject};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::nats_publish::{
    bounded, core_batch, jetstream_batch, publish_core, publish_jetstream, Target,
};
use super::{Accepted, AcceptedBatch, ItemKind, Sink, SinkError, SinkItem};
use crate::config::Subjects;

/// The duplicate window of streams this sink creates (JetStream's default).
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl Subjects {
    /// The subject of items of `kind`.
    pub fn for_kind(&self, kind: ItemKind) -> &str {
        match kind {
            ItemKind::Data => &self.data,
            ItemKind::Control => &self.control,
        }
    }
}

/// The JetStream stream that stores the items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// The stream's name (default `FEDERATED`).
    pub name: String,
    /// Create the stream when it is missing (default `true`): file storage,
    /// both subjects, a duplicate window of two minutes. An existing
    /// stream is used as it is.
    pub create: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            name: "FEDERATED".to_owned(),
            create: true,
        }
    }
}

/// Configuration of a [`NatsSink`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// The server URL (default `nats://127.0.0.1:4222`); several may be
    /// given, separated by commas. Credentials may be embedded
    /// (`nats://user:password@host:4222`).
    pub url: String,
    /// Where items go.
    pub subjects: Subjects,
    /// Publish into this JetStream stream; unset (the default) publishes with
    /// core NATS, which stores nothing.
    pub jetstream: Option<StreamConfig>,
    /// Upper bound of every wait of a send: for the publish to be queued, for
    /// the flush (core) or the stream's acknowledgement (JetStream). Default 5 s.
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// Upper bound of the first connection, and of each later dial. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for NatsSinkConfig {
    fn default() -> Self {
        NatsSinkConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            subjects: Subjects::default(),
            jetstream: None,
            ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl NatsSinkConfig {
    /// Checks the values that need no server; the error names the key.
    pub fn validate(&self) -> Result<(), SinkError> {
        if self.url.trim().is_empty() {
            return Err(invalid("url must not be empty"));
        }
        check_subject("subjects.data", &self.subjects.data)?;
        check_subject("subjects.control", &self.subjects.control)?;
        if self.ack_timeout.is_zero() {
            return Err(invalid("ack_timeout must be > 0"));
        }
        if self.connect_timeout.is_zero() {
            return Err(invalid("connect_timeout must be > 0"));
        }
        if let Some(stream) = &self.jetstream {
            let name = &stream.name;
            if name.is_empty()
                || name.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')
                })
            {
                return Err(invalid(&format!(
                    "jetstream.name must be a non-empty name without spaces, \
                     '.', '*', '>', '/' or '\\' (got {name:?})"
                )));
            }
        }
        Ok(())
    }
}

fn invalid(message: &str) -> SinkError {
    SinkError::Rejected(format!("invalid NATS sink config: {message}"))
}

/// A subject to publish to: dot-separated non-empty tokens, no wildcards, no
/// whitespace.
fn check_subject(key: &str, subject: &str) -> Result<(), SinkError> {
    let valid = !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && !token.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if valid {
        Ok(())
    } else {
        Err(invalid(&format!(
            "{key} must be a subject without wildcards or spaces (got {subject:?})"
        )))
    }
}

enum Mode {
    Core,
    /// Boxed: a context is far larger than nothing.
    JetStream {
        context: Box<jetstream::Context>,
        stream: String,
    },
}

/// A [`Sink`] publishing to NATS, with core NATS or into a JetStream stream
/// (core NATS promises nothing past the publish; JetStream acks an item
/// once it is stored, and deduplicates by `Nats-Msg-Id`).
pub struct NatsSink {
    client: async_nats::Client,
    data: Subject,
    control: Subject,
    ack_timeout: Duration,
    mode: Mode,
}

impl NatsSink {
    /// Connects to the server, and in JetStream mode creates the stream when
    /// configured to and checks that it captures both subjects.
    ///
    /// Fails with [`SinkError::Rejected`] when the configuration cannot work
    /// (a bad value, refused credentials, a stream that is missing or does not
    /// capture the subjects), and with a retryable error when the server cannot
    /// be reached in `connect_timeout`. Must run inside a tokio runtime (an
    /// actix system is one).
    pub async fn connect(config: NatsSinkConfig) -> Result<NatsSink, SinkError> {
        config.validate()?;
        let options = async_nats::ConnectOptions::new()
            .name("switchboard")
            .connection_timeout(config.connect_timeout)
            .request_timeout(Some(config.ack_timeout));
        let client = bounded(config.connect_timeout, options.connect(config.url.as_str()))
            .await?
            .map_err(|error| {
                let message = format!("connecting to {}: {error}", redact(&config.url));
                match error.kind() {
                    ConnectErrorKind::ServerParse
                    | ConnectErrorKind::Authentication
                    | ConnectErrorKind::AuthorizationViolation
                    | ConnectErrorKind::Tls => SinkError::Rejected(message),
                    ConnectErrorKind::TimedOut => SinkError::Timeout(config.connect_timeout),
                    _ => SinkError::Unavailable(message),
                }
            })?;
        let mode = match &config.jetstream {
            None => Mode::Core,
            Some(stream) => {
                let context = jetstream::ContextBuilder::new()
                    .timeout(config.ack_timeout)
                    .build(client.clone());
                prepare_stream(&context, stream, &config.subjects, config.ack_timeout).await?;
                Mode::JetStream {
                    context: Box::new(context),
                    stream: stream.name.clone(),
                }
            }
        };
        tracing::info!(
            url = %redact(&config.url),
            jetstream = config.jetstream.as_ref().map(|stream| stream.name.as_str()),
            data = %config.subjects.data,
            control = %config.subjects.control,
            "NATS sink connected"
        );
        Ok(NatsSink {
            client,
            data: Subject::from(config.subjects.data.as_str()),
            control: Subject::from(config.subjects.control.as_str()),
            ack_timeout: config.ack_timeout,
            mode,
        })
    }

    /// The underlying client (for its connection state and statistics).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Whether items go into a JetStream stream.
    pub fn is_jetstream(&self) -> bool {
        matches!(self.mode, Mode::JetStream { .. })
    }

    fn subject(&self, kind: ItemKind) -> Subject {
        match kind {
            ItemKind::Data => self.data.clone(),
            ItemKind::Control => self.control.clone(),
        }
    }
}

impl Sink for NatsSink {
    fn name(&self) -> &'static str {
        match self.mode {
            Mode::Core => "nats",
            Mode::JetStream { .. } => "jetstream",
        }
    }

    fn send(&self, item: SinkItem) -> BoxFuture<'static, Result<Accepted, SinkError>> {
        let subject = self.subject(item.kind);
        let client = self.client.clone();
        let limit = self.ack_timeout;
        match &self.mode {
            Mode::Core => Box::pin(publish_core(client, subject, item, limit)),
            Mode::JetStream { context, stream } => Box::pin(publish_jetstream(
                client,
                jetstream::Context::clone(context),
                stream.clone(),
                subject,
                item,
                limit,
            )),
        }
    }

    /// Publishes the whole batch without waiting in between, then awaits
    /// its confirmations together under one deadline (JetStream: every
    /// `PubAck`; core NATS: one flush).
    fn send_batch(&self, items: Vec<SinkItem>) -> BoxFuture<'static, AcceptedBatch> {
        let target = Target {
            client: self.client.clone(),
            data: self.data.clone(),
            control: self.control.clone(),
            limit: self.ack_timeout,
        };
        match &self.mode {
            Mode::Core => Box::pin(core_batch(target, items)),
            Mode::JetStream { context, stream } => Box::pin(jetstream_batch(
                target,
                jetstream::Context::clone(context),
                stream.clone(),
                items,
            )),
        }
    }
}

/// Creates the stream when configured to, then checks that it is the stream
/// capturing both subjects.
async fn prepare_stream(
    context: &jetstream::Context,
    config: &StreamConfig,
    subjects: &Subjects,
    limit: Duration,
) -> Result<(), SinkError> {
    if config.create {
        let wanted = stream::Config {
            name: config.name.clone(),
            subjects: vec![subjects.data.clone(), subjects.control.clone()],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        bounded(limit, context.get_or_create_stream(wanted))
            .await?
            .map_err(|error| {
                let message = format!("creating stream {}: {error}", config.name);
                match error.kind() {
                    CreateStreamErrorKind::TimedOut => SinkError::Timeout(limit),
                    CreateStreamErrorKind::JetStream(api) if api.code() != 503 => {
                        SinkError::Rejected(message)
                    }
                    CreateStreamErrorKind::EmptyStreamName
                    | CreateStreamErrorKind::InvalidStreamName
                    | CreateStreamErrorKind::DomainAndExternalSet => SinkError::Rejected(message),
                    _ => SinkError::Unavailable(message),
                }
            })?;
    }
    for subject in [&subjects.data, &subjects.control] {
        let owner = bounded(limit, context.stream_by_subject(subject.as_str()))
            .await?
            .map_err(|error| match error.kind() {
                GetStreamByNameErrorKind::NotFound => SinkError::Rejected(format!(
                    "no JetStream stream captures {subject:?}; \
                         create stream {} or set jetstream.create",
                    config.name
                )),
                GetStreamByNameErrorKind::InvalidSubject => {
                    invalid(&format!("{subject:?} is not a valid subject"))
                }
                _ => {
                    SinkError::Unavailable(format!("looking up the stream of {subject:?}: {error}"))
                }
            })?;
        if owner != config.name {
            return Err(SinkError::Rejected(format!(
                "{subject:?} is captured by stream {owner}, not by the configured stream {}",
                config.name
            )));
        }
    }
    Ok(())
}

/// The URL without its credentials, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    url.split(',')
        .map(|server| match (server.find("://"), server.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***@{}", &server[..scheme + 3], &server[at + 1..])
            }
            (None, Some(at)) => format!("***@{}", &server[at + 1..]),
            _ => server.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_serde() {
        let config: NatsSinkConfig = serde_json::from_str(
            r#"{"url": "nats://h:4222", "jetstream": {}, "ack_timeout": "250ms"}"#,
        )
        .expect("parses");
        assert_eq!(config.url, "nats://h:4222");
        assert_eq!(config.subjects, Subjects::default());
        assert_eq!(config.jetstream, Some(StreamConfig::default()));
        assert_eq!(config.ack_timeout, Duration::from_millis(250));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert_eq!(NatsSinkConfig::default().jetstream, None);
        assert!(serde_json::from_str::<NatsSinkConfig>(r#"{"subject": "x"}"#).is_err());
        assert!(serde_json::from_str::<NatsSinkConfig>(r#"{"jetstream": {"nme": "x"}}"#).is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = NatsSinkConfig::default();
        assert!(config.validate().is_ok());
        config.subjects.data = "federated.*".to_owned();
        let error = config.validate().expect_err("wildcard refused");
        assert!(error.to_string().contains("subjects.data"), "{error}");
        config.subjects.data = "federated.data".to_owned();
        config.jetstream = Some(StreamConfig {
            name: "A.B".to_owned(),
            create: true,
        });
        let error = config.validate().expect_err("dotted name refused");
        assert!(error.to_string().contains("jetstream.name"), "{error}");
        assert!(!error.is_retryable());
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://h:1,tok@h:2"), "nats://h:1,***@h:2");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
    }

    #[test]
    fn subjects_per_kind() {
        let subjects = Subjects::default();
        assert_eq!(subjects.for_kind(ItemKind::Data), "federated.data");
        assert_eq!(subjects.for_kind(ItemKind::Control), "federated.control");
    }
}
