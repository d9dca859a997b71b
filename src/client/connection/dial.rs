//! One dial: the URL it goes to, the credential it carries, and what a
//! failure means (the handshake itself is the transport's).

use actix::Context;
use base64::prelude::{Engine, BASE64_STANDARD};

use super::super::config::{ConnectionConfig, WireProtocol};
use super::super::error::{DialError, DialErrorKind};
use super::Connection;
use crate::client::auth::Credential;
use crate::client::events::ConnectEvent;
use crate::protocol::phoenix;
use crate::report::with_sources;
use crate::transport::DialRequest;

/// The URL of the next dial: the configured one with the params evaluated
/// now (and, for Phoenix, `vsn=2.0.0`).
pub(super) fn dial_url(config: &ConnectionConfig) -> String {
    let mut params = config
        .params
        .as_ref()
        .map(|params| params())
        .unwrap_or_default();
    if config.protocol == WireProtocol::Phoenix {
        params.retain(|(key, _)| key != "vsn");
        params.push(("vsn".to_owned(), phoenix::VSN.to_owned()));
    }
    if params.is_empty() {
        return config.url.clone();
    }
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    let separator = if config.url.contains('?') { '&' } else { '?' };
    format!("{}{separator}{query}", config.url)
}

/// A WebSocket URL: `ws://` or `wss://` and a host.
pub(super) fn check_url(url: &str) -> Result<(), DialError> {
    let invalid = |reason: String| DialError::new(DialErrorKind::Url { reason });
    let uri: actix_web::http::Uri = url.parse().map_err(|e| invalid(format!("{url}: {e}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("ws" | "wss"), Some(_)) => Ok(()),
        _ => Err(invalid(format!(
            "{url}: expected ws://host[:port]/path or wss://..."
        ))),
    }
}

/// The transport's request for one dial of `url` with `credential`.
pub(super) fn dial_request(
    config: &ConnectionConfig,
    url: String,
    credential: &Credential,
) -> DialRequest {
    let authorization = match credential {
        Credential::Nothing => None,
        Credential::Bearer(token) => Some(format!("Bearer {token}")),
        Credential::Basic(user, password) => {
            let pair = BASE64_STANDARD.encode(format!("{user}:{password}"));
            Some(format!("Basic {pair}"))
        }
    };
    DialRequest {
        url,
        headers: authorization
            .map(|value| ("Authorization".to_owned(), value))
            .into_iter()
            .collect(),
        subprotocols: Vec::new(),
        max_message_bytes: config.max_frame_bytes,
        connect_timeout: config.connect_timeout,
    }
}

/// Close codes after which redialling cannot help (NET-9).
pub(super) fn is_terminal(code: u16) -> bool {
    matches!(code, 1002 | 1003 | 1007 | 1008 | 1009 | 1010)
}

impl Connection {
    /// A dial failed: redial with backoff, or close for good when no
    /// redial can help.
    pub(super) fn dial_failed(&mut self, error: DialError, ctx: &mut Context<Self>) {
        let reason = with_sources(&error);
        // A bad URL never works; a TLS refusal ends a connection that never
        // got through (a wrong CA, a wrong host), while one that worked
        // before keeps redialling (a certificate being replaced).
        let terminal = match error.kind() {
            DialErrorKind::Url { .. } => true,
            DialErrorKind::Tls { .. } => !self.history.ever_connected,
            _ => false,
        };
        if terminal {
            // No redial can fix the configuration.
            self.parts.announcer.record_dial_error(error);
            return self.close_for_good(&reason, ctx);
        }
        self.history.failed_dials += 1;
        metrics::counter!("switchboard_client_dial_failures_total").increment(1);
        tracing::info!(parent: &self.span, %reason, "dial failed");
        self.parts.announcer.emit(ConnectEvent::Disconnected {
            reason: reason.clone(),
        });
        if !self.history.ever_connected && self.parts.config.fail_first_connect {
            self.parts.announcer.record_dial_error(error);
            return self.close_for_good(&format!("first connect failed: {reason}"), ctx);
        }
        self.retry(ctx);
    }

    /// Schedules the next dial, or gives up once `max_retries` are spent.
    pub(super) fn retry(&mut self, ctx: &mut Context<Self>) {
        match self.backoff.next_delay() {
            Some(delay) => self.schedule_dial(delay, ctx),
            None => {
                let attempts = self.backoff.attempt();
                self.close_for_good(&format!("gave up after {attempts} attempts"), ctx);
            }
        }
    }
}
