//! The sink check: every envelope id the producer saw acked must be in the
//! hub's JetStream stream.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_nats::jetstream::{self, consumer::pull::OrderedConfig};
use futures_util::StreamExt;

use super::hub::STREAM;
use super::SinkCheck;

/// How long one message of the stream may take to arrive.
const NEXT_WITHIN: Duration = Duration::from_secs(30);

/// Reads every message's `Nats-Msg-Id` (headers only) and compares them
/// with the ids in `acked_file`.
pub async fn check(nats_url: &str, acked_file: &Path) -> anyhow::Result<SinkCheck> {
    let acked_text = std::fs::read_to_string(acked_file)
        .with_context(|| format!("reading {}", acked_file.display()))?;
    let acked: HashSet<&str> = acked_text.lines().collect();
    let context = jetstream::new(async_nats::connect(nats_url).await?);
    let mut stream = context
        .get_stream(STREAM)
        .await
        .map_err(|error| anyhow!("stream {STREAM}: {error}"))?;
    let stored = stream
        .info()
        .await
        .map_err(|error| anyhow!("stream {STREAM} info: {error}"))?
        .state
        .messages;
    let consumer = stream
        .create_consumer(OrderedConfig {
            headers_only: true,
            ..OrderedConfig::default()
        })
        .await
        .map_err(|error| anyhow!("a consumer on {STREAM}: {error}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| anyhow!("reading {STREAM}: {error}"))?;
    let mut seen: HashMap<String, u32> = HashMap::new();
    for read in 0..stored {
        let message = tokio::time::timeout(NEXT_WITHIN, messages.next())
            .await
            .map_err(|_| anyhow!("message {read} of {stored} not read within {NEXT_WITHIN:?}"))?
            .ok_or_else(|| anyhow!("the stream ended after {read} of {stored} messages"))?
            .map_err(|error| anyhow!("reading message {read}: {error}"))?;
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .map(|id| id.as_str().to_owned())
            .ok_or_else(|| anyhow!("message {read} has no Nats-Msg-Id"))?;
        *seen.entry(id).or_default() += 1;
    }
    let acked_missing = acked.iter().filter(|id| !seen.contains_key(**id)).count();
    Ok(SinkCheck {
        stored,
        distinct_ids: seen.len(),
        duplicates: seen.values().filter(|count| **count > 1).count(),
        acked: acked.len(),
        acked_missing,
        stored_not_acked: seen
            .keys()
            .filter(|id| !acked.contains(id.as_str()))
            .count(),
    })
}
