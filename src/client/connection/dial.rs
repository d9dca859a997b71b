//! One dial: the URL it goes to, the credential it carries, the WebSocket
//! handshake, and what a failure means.

use std::sync::Arc;

use actix::Context;
use awc::error::{ConnectError, SendRequestError, WsClientError};

use super::super::config::{ConnectionConfig, WireProtocol};
use super::super::error::{DialError, DialErrorKind};
use super::Connection;
use crate::client::auth::Credential;
use crate::client::events::ConnectEvent;
use crate::client::tls::{client_config, handshake_error};
use crate::protocol::phoenix;
use crate::report::with_sources;
use crate::transport::frame_guard::GuardedCodec;

/// The socket of a successful dial, its frame limit enforced at each header.
pub(super) type Framed = actix_codec::Framed<awc::BoxedSocket, GuardedCodec<awc::ws::Codec>>;

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

/// Dials `url` with `credential`: the WebSocket handshake, bounded by the
/// config's connect timeout (the caller bounds the token provider too).
pub(super) async fn connect(
    config: &ConnectionConfig,
    tls: Arc<rustls::ClientConfig>,
    url: String,
    credential: &Credential,
) -> Result<Framed, DialError> {
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(tls))
        .timeout(config.connect_timeout)
        .finish();
    let mut request = client.ws(url).max_frame_size(config.max_frame_bytes);
    request = match credential {
        Credential::Nothing => request,
        Credential::Bearer(token) => request.bearer_auth(token),
        Credential::Basic(user, password) => request.basic_auth(user, Some(password)),
    };
    let limit = config.max_frame_bytes;
    request
        .connect()
        .await
        .map(|(_, framed)| framed.into_map_codec(|codec| GuardedCodec::new(codec, limit)))
        .map_err(classify)
}

/// Close codes after which redialling cannot help (NET-9).
pub(super) fn is_terminal(code: u16) -> bool {
    matches!(code, 1002 | 1003 | 1007 | 1008 | 1009 | 1010)
}

/// The HTTP client's error, in its words (awc's errors are not `Send`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ClientError(String);

fn classify(error: WsClientError) -> DialError {
    match error {
        WsClientError::InvalidResponseStatus(status) => DialError::new(DialErrorKind::Refused {
            status: status.as_u16(),
        }),
        WsClientError::SendRequest(SendRequestError::Connect(ConnectError::Io(io)))
            if tls_is_terminal(&io) =>
        {
            // The reason is the TLS layer's own words; nothing below it.
            DialError::new(DialErrorKind::Tls {
                reason: io.to_string(),
            })
        }
        other => DialError::caused_by(DialErrorKind::Connect, ClientError(other.to_string())),
    }
}

/// Whether a failed handshake failed for a reason a redial cannot change:
/// a certificate that is not trusted or not for this host, or a server that
/// supports nothing we do. Not a certificate outside its validity period (a
/// clock not set yet, a renewal on its way), nor an alert the server sent
/// (those can be passing).
fn tls_is_terminal(error: &std::io::Error) -> bool {
    use rustls::{CertificateError, Error};
    match handshake_error(error) {
        Some(Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        )) => false,
        Some(
            Error::InvalidCertificate(_)
            | Error::NoCertificatesPresented
            | Error::UnsupportedNameType
            | Error::PeerIncompatible(_),
        ) => true,
        _ => false,
    }
}

impl Connection {
    /// The TLS settings of every dial, built once; an unusable CA file is a
    /// terminal dial error.
    pub(super) fn tls(
        &mut self,
        config: &ConnectionConfig,
    ) -> Result<Arc<rustls::ClientConfig>, DialError> {
        if let Some(tls) = &self.tls {
            return Ok(tls.clone());
        }
        let tls = client_config(&config.tls).map_err(|error| {
            DialError::new(DialErrorKind::Tls {
                reason: error.to_string(),
            })
        })?;
        self.tls = Some(tls.clone());
        Ok(tls)
    }

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
