//! A real `nats-server` (with JetStream) on a free loopback port, for the
//! NATS sink tests. Missing binary: the test is skipped with a notice libtest
//! does not capture, or fails when `CI=true` (see [`super::peers`]).

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::Value;
use tempfile::TempDir;
use tokio::time::timeout;

use super::peers::{skip_or_fail, Peer};
use super::WAIT;

/// How long the server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How often readiness is polled.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// Where Debian and hand installs put the binary, besides `PATH`.
const WELL_KNOWN: [&str; 2] = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"];

/// A running `nats-server -js` bound to 127.0.0.1, killed on drop.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store: TempDir,
    child: Option<Child>,
}

/// Starts a server for `test`, or writes an uncaptured SKIPPED notice and
/// returns `None` when `nats-server` is not installed (panics instead when
/// `CI=true`).
pub fn nats_or_skip(test: &str) -> Option<NatsServer> {
    match find_binary() {
        Some(binary) => Some(NatsServer::start_with(binary)),
        None => {
            skip_or_fail(test, Peer::NatsServer, &not_found());
            None
        }
    }
}

/// Why `nats-server` cannot be used here, or `None` when it is installed.
pub fn binary_missing() -> Option<String> {
    match find_binary() {
        Some(_) => None,
        None => Some(not_found()),
    }
}

fn not_found() -> String {
    "nats-server not found on PATH, in /usr/sbin or in /usr/local/bin".to_owned()
}

/// `nats-server` on `PATH`, then in the well-known places.
fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(WELL_KNOWN.iter().map(PathBuf::from))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl NatsServer {
    /// Starts a server, or `None` (after a notice) when the binary is
    /// missing; see [`nats_or_skip`].
    /// The notice names the running test (its thread's name).
    pub fn start() -> Option<NatsServer> {
        let thread = std::thread::current();
        nats_or_skip(thread.name().unwrap_or("a NATS test"))
    }

    fn start_with(binary: PathBuf) -> NatsServer {
        let store = tempfile::tempdir().expect("a temporary JetStream store");
        let mut server = NatsServer {
            binary,
            port: free_port(),
            store,
            child: None,
        };
        server.spawn();
        server
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (the same after [`NatsServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (kept across restarts).
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// Kills the server with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store (kills
    /// it first when it still runs); returns once it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn log_path(&self) -> PathBuf {
        self.store.path().join("nats-server.log")
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the server log opens");
        let log_err = log.try_clone().expect("the server log clones");
        let child = Command::new(&self.binary)
            .arg("-js")
            .args(["-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.store.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls the port every 20 ms for up to 10 s.
    fn wait_ready(&mut self) {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if TcpStream::connect_timeout(&address, POLL_EVERY * 5).is_ok() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                self.kill();
                panic!(
                    "nats-server on port {} did not accept connections within {READY_WITHIN:?} \
                     (exit: {exited:?}); its log:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One stored message: its stream sequence, subject, `Nats-Msg-Id`, payload.
#[derive(Debug)]
pub struct Stored {
    /// Stream sequence.
    pub sequence: u64,
    /// Subject.
    pub subject: String,
    /// Nats-Msg-Id.
    pub id: String,
    /// Payload.
    pub payload: Value,
}

/// The number of messages in the stream.
pub async fn stream_count(js: &jetstream::Context, name: &str) -> u64 {
    let stream = timeout(WAIT, js.get_stream(name))
        .await
        .expect("stream lookup in time")
        .expect("the stream exists");
    let info = timeout(WAIT, stream.get_info())
        .await
        .expect("stream info in time")
        .expect("stream info");
    info.state.messages
}

/// Reads the whole stream with an ephemeral pull consumer.
pub async fn read_stream(js: &jetstream::Context, name: &str) -> Vec<Stored> {
    let expected = stream_count(js, name).await;
    let stream = timeout(WAIT, js.get_stream(name))
        .await
        .expect("stream lookup in time")
        .expect("the stream exists");
    let reader = timeout(
        WAIT,
        stream.create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        }),
    )
    .await
    .expect("consumer created in time")
    .expect("consumer created");
    let mut messages = timeout(WAIT, reader.messages())
        .await
        .expect("pull stream in time")
        .expect("pull stream");
    let mut stored = Vec::new();
    while (stored.len() as u64) < expected {
        let message = timeout(WAIT, messages.next())
            .await
            .unwrap_or_else(|_| panic!("message #{} in time", stored.len() + 1))
            .expect("the pull stream goes on")
            .expect("a message");
        let sequence = message.info().expect("JetStream metadata").stream_sequence;
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|value| value.as_str().to_owned())
            .unwrap_or_default();
        stored.push(Stored {
            sequence,
            subject: message.subject.to_string(),
            id,
            payload: serde_json::from_slice(&message.payload).expect("JSON payload"),
        });
    }
    stored
}

/// A client and JetStream context for reading what the sink stored.
pub async fn observer(url: &str) -> (async_nats::Client, jetstream::Context) {
    let client = timeout(WAIT, async_nats::connect(url))
        .await
        .expect("observer connects in time")
        .expect("observer connects");
    let js = jetstream::new(client.clone());
    (client, js)
}
