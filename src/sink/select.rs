//! Builds the sink the configuration asks for.

use std::sync::Arc;

use super::in_process::CountingSink;
use super::nats::{NatsSink, NatsSinkConfig, StreamConfig};
use super::{Sink, SinkError};
use crate::config::{SinkConfig, SinkType};

/// Connects the configured sink. Call inside the runtime that will use it
/// (a NATS connection lives on the runtime that made it).
pub async fn from_config(config: &SinkConfig) -> Result<Arc<dyn Sink>, SinkError> {
    let jetstream = match config.kind {
        SinkType::InProcess => return Ok(Arc::new(CountingSink::new())),
        SinkType::Nats => None,
        SinkType::Jetstream => Some(StreamConfig {
            name: config.stream.clone(),
            create: true,
        }),
    };
    let nats = NatsSinkConfig {
        url: config.url.clone(),
        subjects: config.subjects.clone(),
        jetstream,
        ..NatsSinkConfig::default()
    };
    let sink = NatsSink::connect(nats).await?;
    tracing::info!(sink = sink.name(), url = %config.url, "sink connected");
    Ok(Arc::new(sink))
}
