//! A real `nats-server` (with JetStream) on a free loopback port, for the
//! NATS sink tests. Missing binary: the test is skipped with a notice libtest
//! does not capture, or fails when `CI=true` (see [`super::peers`]).
//!
//! A server is handed to a test only once it answers the NATS protocol, not
//! merely once its port accepts TCP: a probe connection reads the `INFO` line
//! (which must name this very instance and say JetStream is on), sends
//! `CONNECT` and `PING` and waits for `PONG`, then asks `$JS.API.INFO` and
//! waits for the account info. The probe is retried until it passes, the
//! server exits or [`READY_WITHIN`] runs out. [`NatsServer::restart`] waits
//! the same way.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::Value;
use tempfile::TempDir;
use tokio::time::timeout;

use super::peers::{skip_or_fail, Peer};
use super::WAIT;

/// How long a (re)started server may take to answer the NATS protocol.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// The pause between two readiness probes.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// The pause before spawning again when the port was taken.
const PORT_RETRY_EVERY: Duration = Duration::from_millis(100);
/// Upper bound of a probe's connect and of each of its reads and writes.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Where Debian and hand installs put the binary, besides `PATH`.
const WELL_KNOWN: [&str; 2] = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"];
/// The inbox of the probe's JetStream request.
const PROBE_INBOX: &str = "_INBOX.switchboard-readiness";

/// A running `nats-server -js` bound to 127.0.0.1, killed on drop.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store: TempDir,
    child: Option<Child>,
    /// How many times a server process was spawned (names each instance).
    spawns: u32,
}

/// Starts a server for `test` once it answers the protocol, or writes an
/// uncaptured SKIPPED notice and returns `None` when `nats-server` is not
/// installed (panics instead when `CI=true`).
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

/// Why a spawned server is not ready.
enum NotReady {
    /// It exited because something else holds the port.
    PortTaken(ExitStatus),
    /// It exited for another reason.
    Exited(ExitStatus),
    /// It still runs but did not pass a probe in time; the last failure.
    TooSlow(String),
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
            spawns: 0,
        };
        // Nobody knows the port yet: when it was taken meanwhile, take another.
        server.spawn_ready(true);
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
    /// it first when it still runs); returns once it answers the protocol
    /// and JetStream, like a fresh start.
    pub fn restart(&mut self) {
        self.kill();
        // Clients know the port: keep it, retrying while something holds it.
        self.spawn_ready(false);
    }

    fn log_path(&self) -> PathBuf {
        self.store.path().join("nats-server.log")
    }

    /// The name of the current instance, which its `INFO` must carry.
    fn instance_name(&self) -> String {
        format!(
            "switchboard-test-{}-{}-{}",
            std::process::id(),
            self.port,
            self.spawns
        )
    }

    /// Spawns the server and waits until it is ready, within [`READY_WITHIN`].
    /// When it exits because the port is taken, spawns it again (on a new
    /// port when `new_port_if_taken`); any other failure panics with the log.
    fn spawn_ready(&mut self, new_port_if_taken: bool) {
        let started = Instant::now();
        let deadline = started + READY_WITHIN;
        loop {
            let log_from = self.log_len();
            self.spawn();
            let failure = match self.wait_ready(deadline, log_from) {
                Ok(()) => return,
                Err(NotReady::PortTaken(_)) if Instant::now() < deadline => {
                    if new_port_if_taken {
                        self.port = free_port();
                    }
                    std::thread::sleep(PORT_RETRY_EVERY);
                    continue;
                }
                Err(NotReady::PortTaken(status)) => {
                    format!("exited ({status}): port {} is taken", self.port)
                }
                Err(NotReady::Exited(status)) => format!("exited ({status})"),
                Err(NotReady::TooSlow(last)) => {
                    format!("did not pass a readiness probe (last: {last})")
                }
            };
            self.kill();
            panic!(
                "nats-server on port {} was not ready {:?} after its start: it {failure}; \
                 its log:\n{}",
                self.port,
                started.elapsed(),
                self.log_tail()
            );
        }
    }

    fn spawn(&mut self) {
        self.spawns += 1;
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
            .args(["--server_name", &self.instance_name()])
            .arg("-sd")
            .arg(self.store.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.binary.display()));
        self.child = Some(child);
    }

    /// Probes the current instance every [`POLL_EVERY`] until a probe passes
    /// while the process still runs, the process exits, or `deadline`.
    fn wait_ready(&mut self, deadline: Instant, log_from: u64) -> Result<(), NotReady> {
        let name = self.instance_name();
        loop {
            let probe = probe(self.port, &name);
            if let Some(status) = self.exit_status() {
                let log = self.log_since(log_from);
                return Err(if log.contains("address already in use") {
                    NotReady::PortTaken(status)
                } else {
                    NotReady::Exited(status)
                });
            }
            match probe {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline => std::thread::sleep(POLL_EVERY),
                Err(last) => return Err(NotReady::TooSlow(last)),
            }
        }
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path()).map_or(0, |meta| meta.len())
    }

    /// The server's log from byte `offset` on (where one spawn's lines start).
    fn log_since(&self, offset: u64) -> String {
        let bytes = std::fs::read(self.log_path()).unwrap_or_default();
        let from = usize::try_from(offset).map_or(bytes.len(), |from| from.min(bytes.len()));
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.log_since(0);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One readiness probe of the server named `name` on `port`: `INFO` names it
/// and says JetStream is on, `PING` gets `PONG`, `$JS.API.INFO` gets account
/// info. Every step is bounded by [`PROBE_TIMEOUT`].
fn probe(port: u16, name: &str) -> Result<(), String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&address, PROBE_TIMEOUT)
        .map_err(|error| format!("connect: {error}"))?;
    let io = |error: std::io::Error| format!("probe I/O: {error}");
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).map_err(io)?;
    let mut writer = stream.try_clone().map_err(io)?;
    let mut reader = BufReader::new(stream);

    let info = read_line(&mut reader)?;
    let info: Value = info
        .strip_prefix("INFO ")
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or_else(|| format!("expected INFO, got {info:?}"))?;
    if info["server_name"] != name {
        return Err(format!(
            "the port is answered by another server ({})",
            info["server_name"]
        ));
    }
    if info["jetstream"] != true {
        return Err("INFO says JetStream is off".to_owned());
    }

    writer
        .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n")
        .map_err(io)?;
    let pong = next_reply(&mut reader, &mut writer)?;
    if pong != "PONG" {
        return Err(format!("expected PONG, got {pong:?}"));
    }

    writer
        .write_all(
            format!("SUB {PROBE_INBOX} 1\r\nPUB $JS.API.INFO {PROBE_INBOX} 0\r\n\r\n").as_bytes(),
        )
        .map_err(io)?;
    let header = next_reply(&mut reader, &mut writer)?;
    let size: usize = header
        .strip_prefix("MSG ")
        .and_then(|rest| rest.rsplit(' ').next())
        .and_then(|size| size.parse().ok())
        .ok_or_else(|| format!("expected the JetStream reply, got {header:?}"))?;
    let mut payload = vec![0; size + 2];
    reader.read_exact(&mut payload).map_err(io)?;
    let account: Value = serde_json::from_slice(&payload[..size])
        .map_err(|error| format!("JetStream reply is not JSON: {error}"))?;
    if let Some(error) = account.get("error") {
        return Err(format!("JetStream is not ready: {error}"));
    }
    Ok(())
}

/// One protocol line without its `\r\n`; an error at end of stream.
fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Err("the server closed the probe connection".to_owned()),
        Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_owned()),
        Err(error) => Err(format!("reading: {error}")),
    }
}

/// The next line that answers the probe: skips `+OK` and asynchronous
/// `INFO`, answers the server's `PING`, turns `-ERR` into an error.
fn next_reply(reader: &mut impl BufRead, writer: &mut impl Write) -> Result<String, String> {
    loop {
        let line = read_line(reader)?;
        if line == "+OK" || line.starts_with("INFO ") {
            continue;
        }
        if line == "PING" {
            writer
                .write_all(b"PONG\r\n")
                .map_err(|error| format!("probe I/O: {error}"))?;
            continue;
        }
        if line.starts_with("-ERR") {
            return Err(line);
        }
        return Ok(line);
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
