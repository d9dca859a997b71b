//! Credentials a client presents on every dial.
//!
//! A bearer token comes from the config, an environment variable, or a
//! provider called before every dial; when the provider fails, the last good
//! token is used again.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

/// Produces a fresh token before each dial.
pub(crate) type TokenProvider =
    Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// Where a bearer token comes from.
#[derive(Clone)]
pub enum TokenSource {
    /// A fixed token.
    Static(String),
    /// Read from this environment variable before every dial.
    Env(String),
    /// Asked of this provider before every dial (falls back to `fallback`,
    /// then to the last token it gave, when it fails).
    Provider {
        /// The provider.
        provider: TokenProvider,
        /// Used when the provider fails before ever succeeding.
        fallback: Option<String>,
    },
}

/// What a connection authenticates with.
#[derive(Clone, Default)]
pub enum ClientAuth {
    /// Nothing.
    #[default]
    None,
    /// `Authorization: Bearer <token>` on the upgrade request.
    Bearer(TokenSource),
    /// `Authorization: Basic` from a user name and a password.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            ClientAuth::None => "None",
            ClientAuth::Bearer(TokenSource::Static(_)) => "Bearer(static)",
            ClientAuth::Bearer(TokenSource::Env(_)) => "Bearer(env)",
            ClientAuth::Bearer(TokenSource::Provider { .. }) => "Bearer(provider)",
            ClientAuth::Basic { .. } => "Basic",
        };
        f.write_str(kind)
    }
}

/// The last token that worked, kept for a failing provider.
#[derive(Default, Clone)]
pub(crate) struct TokenCache {
    last: Option<String>,
}

/// The header value to send, once resolved for one dial.
pub(crate) enum Credential {
    /// No `Authorization` header.
    Nothing,
    /// A bearer token.
    Bearer(String),
    /// A basic pair.
    Basic(String, String),
}

impl TokenCache {
    /// Resolves the credential for the next dial (calling the provider, if any).
    pub(crate) fn resolve(&self, auth: &ClientAuth) -> BoxFuture<'static, Credential> {
        let last = self.last.clone();
        match auth.clone() {
            ClientAuth::None => Box::pin(async { Credential::Nothing }),
            ClientAuth::Basic { username, password } => {
                Box::pin(async move { Credential::Basic(username, password) })
            }
            ClientAuth::Bearer(TokenSource::Static(token)) => {
                Box::pin(async move { Credential::Bearer(token) })
            }
            ClientAuth::Bearer(TokenSource::Env(var)) => Box::pin(async move {
                match std::env::var(&var) {
                    Ok(token) => Credential::Bearer(token),
                    Err(_) => {
                        tracing::warn!(%var, "token variable not set; dialling without a token");
                        last.map_or(Credential::Nothing, Credential::Bearer)
                    }
                }
            }),
            ClientAuth::Bearer(TokenSource::Provider { provider, fallback }) => {
                Box::pin(async move {
                    match provider().await {
                        Ok(token) => Credential::Bearer(token),
                        Err(error) => {
                            metrics::counter!("switchboard_client_token_errors_total").increment(1);
                            tracing::warn!(%error, "token provider failed; using the last token");
                            last.or(fallback)
                                .map_or(Credential::Nothing, Credential::Bearer)
                        }
                    }
                })
            }
        }
    }

    /// Remembers the token a dial used.
    pub(crate) fn remember(&mut self, credential: &Credential) {
        if let Credential::Bearer(token) = credential {
            self.last = Some(token.clone());
        }
    }
}
