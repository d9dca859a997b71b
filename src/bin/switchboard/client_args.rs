//! What every client command takes: credentials, TLS, join params; how a
//! first dial that cannot succeed is reported (exit 2, with a hint); and
//! the progress drawn on a terminal.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde_json::{Map, Value};
use switchboard::client::{
    ClientAuth, ConnectionConfig, DialError, DialErrorKind, OpenError, TokenSource,
};

/// Credentials and TLS of a client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Bearer token (or the SWITCHBOARD_TOKEN variable).
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// HTTP basic credentials, USER:PASS (or the SWITCHBOARD_BASIC
    /// variable); taken over a token when both are given.
    #[arg(long, env = "SWITCHBOARD_BASIC", hide_env_values = true, value_name = "USER:PASS",
          value_parser = parse_basic)]
    pub basic: Option<(String, String)>,
    /// A PEM file of CA certificates trusted for wss:// besides the
    /// platform's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Join params of `tail` and `send`.
#[derive(Debug, Clone, clap::Args)]
pub struct JoinArgs {
    /// A join param, KEY=VALUE (repeatable; VALUE is taken as JSON when it
    /// parses, else as a string).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, Value)>,
    /// Join params as one JSON object (the --param entries go on top).
    #[arg(long = "params", value_name = "JSON", value_parser = parse_object)]
    pub params_json: Option<Map<String, Value>>,
}

fn parse_basic(text: &str) -> Result<(String, String), String> {
    text.split_once(':')
        .map(|(user, password)| (user.to_owned(), password.to_owned()))
        .ok_or_else(|| "expected USER:PASS".to_owned())
}

fn parse_param(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE".to_owned())?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("expected a JSON object".to_owned()),
        Err(error) => Err(format!("not JSON: {error}")),
    }
}

impl ConnectArgs {
    /// A connection config for `url`: Phoenix defaults, these credentials
    /// and this CA file.
    pub fn config(&self, url: &str) -> ConnectionConfig {
        let mut config = ConnectionConfig::new(url);
        if let Some(token) = &self.token {
            config.auth = ClientAuth::Bearer(TokenSource::Static(token.clone()));
        }
        if let Some((username, password)) = &self.basic {
            config.auth = ClientAuth::Basic {
                username: username.clone(),
                password: password.clone(),
            };
        }
        config.tls.ca_file = self.ca_file.clone();
        config
    }
}

impl JoinArgs {
    /// The join payload.
    pub fn payload(&self) -> Value {
        let mut object = self.params_json.clone().unwrap_or_default();
        for (key, value) in &self.params {
            object.insert(key.clone(), value.clone());
        }
        Value::Object(object)
    }
}

/// A first dial that no retry can fix: a bad URL, TLS, or the upgrade
/// refused with 401, 403 or 404 (the CLI's credentials are fixed). The
/// message carries a hint where one helps.
pub fn terminal(error: &OpenError) -> Option<String> {
    let dial = match error {
        OpenError::FirstConnect(dial) => dial,
        OpenError::ClosedFirst { reason } => return Some(reason.clone()),
        _ => return None,
    };
    let words = crate::with_sources(dial);
    match dial.kind() {
        DialErrorKind::Url { .. } | DialErrorKind::Tls { .. } => Some(words),
        DialErrorKind::Refused { status: 404 } => Some(format!(
            "{words} (nothing at that path: Phoenix socket URLs end in /websocket, \
             e.g. ws://host:4000/socket/websocket)"
        )),
        DialErrorKind::Refused { status: 401 | 403 } => Some(refused_hint(dial, &words)),
        _ => None,
    }
}

fn refused_hint(dial: &DialError, words: &str) -> String {
    match dial.kind() {
        DialErrorKind::Refused { status: 401 } => {
            format!("{words} (check --token or --basic)")
        }
        _ => format!("{words} (a wrong origin or protocol version, or not allowed)"),
    }
}

/// Most redraws of a progress bar per second.
const REDRAWS_PER_S: u8 = 10;

/// A progress bar on stderr in `style`, redrawn at most 10 times a second
/// and at least that often (elapsed time moves while nothing happens);
/// `None` when stderr is not a terminal (or `TERM=dumb`, which cannot
/// redraw a line): then nothing is drawn at all.
pub fn stderr_bar(len: Option<u64>, style: ProgressStyle) -> Option<ProgressBar> {
    let dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
    if dumb || !std::io::stderr().is_terminal() {
        return None;
    }
    let target = ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_S);
    let bar = ProgressBar::with_draw_target(len, target).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(REDRAWS_PER_S)));
    Some(bar)
}

/// `template` as a style (indicatif's plain bar if it does not parse), with
/// a `{rate}` key: the position's recent rate per second.
pub fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &ProgressState, out: &mut dyn fmt::Write| {
            let rate = state.per_sec();
            let digits = if rate < 100.0 { 1 } else { 0 };
            let _ = write!(out, "{rate:.digits$}");
        })
}
