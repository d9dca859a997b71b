//! Credentials of inbound connections, checked before the upgrade.
//!
//! A bearer token may come in the `Authorization` header, the `token` query
//! parameter, or phoenix.js's `Sec-WebSocket-Protocol` entry
//! `base64url.bearer.phx.<base64url(token)>`. Secrets are read from the
//! environment once, at start-up, and compared in constant time.

use actix_web::http::header::{self, HeaderMap};
use actix_web::HttpRequest;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, AuthType, ServerConfig};

/// Prefix of the token entry phoenix.js puts in `Sec-WebSocket-Protocol`.
pub(crate) const PHOENIX_TOKEN_PROTOCOL: &str = "base64url.bearer.phx.";

/// The hub cannot start: a secret named in the config is missing.
#[derive(Debug, thiserror::Error)]
#[error("{key}: environment variable {var} is not set, or holds no usable value")]
pub struct MissingSecret {
    /// The config key naming the variable.
    pub key: &'static str,
    /// The variable.
    pub var: String,
}

/// The credentials every connection must present.
#[derive(Clone)]
pub enum Credentials {
    /// Anyone may connect.
    Open,
    /// This bearer token.
    Bearer(Vec<u8>),
    /// This user and password.
    Basic {
        /// Expected user name.
        username: Vec<u8>,
        /// Expected password.
        password: Vec<u8>,
    },
    /// Any of these bearer tokens, each naming its principal: what an
    /// ingest sender's producers belong to (`(principal, token)` pairs).
    Tokens(Vec<(String, Vec<u8>)>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Credentials::Open => "Open",
            Credentials::Bearer(_) => "Bearer(..)",
            Credentials::Basic { .. } => "Basic(..)",
            Credentials::Tokens(_) => "Tokens(..)",
        };
        f.write_str(kind)
    }
}

fn secret(key: &'static str, var: &str) -> Result<Vec<u8>, MissingSecret> {
    std::env::var(var)
        .ok()
        .filter(|value| !value.is_empty())
        .map(String::into_bytes)
        .ok_or_else(|| MissingSecret {
            key,
            var: var.to_owned(),
        })
}

impl Credentials {
    /// The token `server.admin_token_env` names, when it names one.
    pub(crate) fn admin(server: &ServerConfig) -> Result<Option<Credentials>, MissingSecret> {
        match &server.admin_token_env {
            Some(var) => Ok(Some(Credentials::Bearer(secret(
                "server.admin_token_env",
                var,
            )?))),
            None => Ok(None),
        }
    }

    /// Reads the secrets `auth` names from the environment.
    pub fn from_config(auth: &AuthConfig) -> Result<Credentials, MissingSecret> {
        Ok(match auth.kind {
            AuthType::None => Credentials::Open,
            AuthType::Bearer => {
                Credentials::Bearer(secret("auth.bearer_token_env", &auth.bearer_token_env)?)
            }
            AuthType::Basic => Credentials::Basic {
                username: secret("auth.basic_username_env", &auth.basic_username_env)?,
                password: secret("auth.basic_password_env", &auth.basic_password_env)?,
            },
            AuthType::Tokens => {
                let listed = secret("auth.tokens_env", &auth.tokens_env)?;
                let tokens = named_tokens(&String::from_utf8_lossy(&listed));
                let mut distinct: Vec<&[u8]> = tokens.iter().map(|(_, t)| t.as_slice()).collect();
                distinct.sort_unstable();
                distinct.dedup();
                if tokens.is_empty() || distinct.len() != tokens.len() {
                    // No valid `name=token` pair, or one token under two names.
                    return Err(MissingSecret {
                        key: "auth.tokens_env",
                        var: auth.tokens_env.clone(),
                    });
                }
                Credentials::Tokens(tokens)
            }
        })
    }

    /// Whether `req` carries the expected credentials.
    pub fn admits(&self, req: &HttpRequest, query_token: Option<&str>) -> bool {
        self.principal(req.headers(), query_token).is_some()
    }

    /// The one principal every sender is under these credentials, if they
    /// admit one only (all but [`Credentials::Tokens`]).
    pub(crate) fn single_principal(&self) -> Option<&'static str> {
        match self {
            Credentials::Open => Some("anonymous"),
            Credentials::Bearer(_) => Some("bearer"),
            Credentials::Basic { .. } => Some("basic"),
            Credentials::Tokens(_) => None,
        }
    }

    /// Who a request with `headers` authenticates as: `anonymous` without credentials,
    /// `bearer` or `basic` for the single token or user, the token's name
    /// for [`Credentials::Tokens`]; `None` when it does not authenticate.
    pub(crate) fn principal(&self, req: &HeaderMap, query_token: Option<&str>) -> Option<String> {
        match self {
            Credentials::Open => Some("anonymous".to_owned()),
            Credentials::Bearer(expected) => bearer_tokens(req, query_token)
                .iter()
                .any(|token| same(token, expected))
                .then(|| "bearer".to_owned()),
            Credentials::Basic { username, password } => basic_pair(req)
                .is_some_and(|(user, pass)| same(&user, username) & same(&pass, password))
                .then(|| "basic".to_owned()),
            Credentials::Tokens(known) => {
                let given = bearer_tokens(req, query_token);
                // Every pair is compared, whatever matches, in constant time.
                let mut found = None;
                for (name, expected) in known {
                    let matches = given
                        .iter()
                        .fold(false, |hit, token| hit | same(token, expected));
                    if matches && found.is_none() {
                        found = Some(name.clone());
                    }
                }
                found
            }
        }
    }
}

/// `name=token` pairs separated by commas (names are `[A-Za-z0-9_-]`,
/// entries that are not such a pair are skipped).
fn named_tokens(listed: &str) -> Vec<(String, Vec<u8>)> {
    listed
        .split(',')
        .filter_map(|entry| entry.trim().split_once('='))
        .filter(|(name, token)| {
            !name.is_empty()
                && !token.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(|(name, token)| (name.to_owned(), token.as_bytes().to_vec()))
        .collect()
}

fn same(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}

fn authorization(req: &HeaderMap, scheme: &str) -> Option<String> {
    let value = req.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim().to_owned())
}

fn bearer_tokens(req: &HeaderMap, query_token: Option<&str>) -> Vec<Vec<u8>> {
    let mut tokens = Vec::new();
    if let Some(token) = authorization(req, "Bearer") {
        tokens.push(token.into_bytes());
    }
    if let Some(token) = query_token {
        tokens.push(token.as_bytes().to_vec());
    }
    tokens.extend(subprotocol_token(req));
    tokens
}

/// The token phoenix.js sends as a `Sec-WebSocket-Protocol` entry, decoded.
fn subprotocol_token(req: &HeaderMap) -> Option<Vec<u8>> {
    req.get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.trim().strip_prefix(PHOENIX_TOKEN_PROTOCOL))
        .find_map(|encoded| {
            // phoenix.js encodes with `btoa` (standard alphabet, padding
            // stripped) despite the entry's name; accept both alphabets.
            let encoded = encoded.trim_end_matches('=');
            STANDARD_NO_PAD
                .decode(encoded)
                .or_else(|_| URL_SAFE_NO_PAD.decode(encoded))
                .ok()
        })
}

fn basic_pair(req: &HeaderMap) -> Option<(Vec<u8>, Vec<u8>)> {
    let encoded = authorization(req, "Basic")?;
    let decoded = STANDARD.decode(encoded).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn named_tokens_name_their_principals_and_bad_entries_are_skipped() {
        let tokens = named_tokens("alice=a-1, bob=b-2,bad name=x,=empty,carol=,dave");
        let names: Vec<&str> = tokens.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        let credentials = Credentials::Tokens(tokens);
        let req = |token: &str| {
            TestRequest::default()
                .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
                .to_http_request()
        };
        assert_eq!(
            credentials.principal(req("b-2").headers(), None).as_deref(),
            Some("bob")
        );
        assert_eq!(credentials.principal(req("nope").headers(), None), None);
        assert_eq!(
            credentials
                .principal(req("nope").headers(), Some("a-1"))
                .as_deref(),
            Some("alice")
        );
    }

    #[test]
    fn bearer_from_header_query_and_subprotocol() {
        let creds = Credentials::Bearer(b"s3cret".to_vec());
        let header = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer s3cret"))
            .to_http_request();
        assert!(creds.admits(&header, None));
        let plain = TestRequest::default().to_http_request();
        assert!(creds.admits(&plain, Some("s3cret")));
        assert!(!creds.admits(&plain, Some("wrong")));
        assert!(!creds.admits(&plain, None));
        let encoded = URL_SAFE_NO_PAD.encode("s3cret");
        let proto = TestRequest::default()
            .insert_header((
                header::SEC_WEBSOCKET_PROTOCOL,
                format!("phoenix, {PHOENIX_TOKEN_PROTOCOL}{encoded}"),
            ))
            .to_http_request();
        assert!(creds.admits(&proto, None));
    }

    #[test]
    fn subprotocol_token_in_either_base64_alphabet() {
        let creds = Credentials::Bearer(b"tok~~~".to_vec());
        for encoded in [
            STANDARD_NO_PAD.encode("tok~~~"),
            URL_SAFE_NO_PAD.encode("tok~~~"),
        ] {
            let req = TestRequest::default()
                .insert_header((
                    header::SEC_WEBSOCKET_PROTOCOL,
                    format!("phoenix, {PHOENIX_TOKEN_PROTOCOL}{encoded}"),
                ))
                .to_http_request();
            assert!(creds.admits(&req, None), "{encoded}");
        }
    }

    #[test]
    fn basic_pair_is_checked() {
        let creds = Credentials::Basic {
            username: b"ann".to_vec(),
            password: b"pw:with:colons".to_vec(),
        };
        let good = TestRequest::default()
            .insert_header((
                header::AUTHORIZATION,
                format!("Basic {}", STANDARD.encode("ann:pw:with:colons")),
            ))
            .to_http_request();
        assert!(creds.admits(&good, None));
        let bad = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Basic !!!not-base64"))
            .to_http_request();
        assert!(!creds.admits(&bad, None));
    }
}
