//! A `nats-server -js` of our own on a free loopback port, for the
//! JetStream scenario; killed when dropped.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tempfile::TempDir;

/// How long the server may take to serve JetStream requests.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// Where Debian and hand installs put the binary, besides `PATH`.
const WELL_KNOWN: [&str; 2] = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"];

/// A running `nats-server` with JetStream, its store in a temporary directory.
pub struct NatsServer {
    child: Child,
    port: u16,
    _store: TempDir,
}

/// `nats-server` on `PATH`, then in the well-known places.
/// A server for `scenario`, or `None` after a `*** SKIPPED ***` line when
/// `nats-server` is not installed (its rows are then left out).
pub async fn start_or_skip(scenario: &str) -> anyhow::Result<Option<NatsServer>> {
    let Some(binary) = find_binary() else {
        eprintln!(
            "*** SKIPPED {scenario}: nats-server not found on PATH, in /usr/sbin or \
             /usr/local/bin (apt-get install nats-server); its rows are left out ***"
        );
        return Ok(None);
    };
    Ok(Some(NatsServer::start(&binary).await?))
}

pub fn find_binary() -> Option<PathBuf> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nats-server"))
                .collect()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(WELL_KNOWN.iter().map(PathBuf::from))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is an executable file.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A loopback port nobody listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl NatsServer {
    /// Starts `binary -js -a 127.0.0.1 -p <free port> -sd <temp dir>` and
    /// waits until JetStream answers.
    pub async fn start(binary: &Path) -> anyhow::Result<NatsServer> {
        let store = tempfile::tempdir().context("a temporary JetStream store")?;
        let port = free_port()?;
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let server = NatsServer {
            child,
            port,
            _store: store,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Polls until the JetStream API answers an info request.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        let mut last = String::from("not tried");
        while Instant::now() < deadline {
            match async_nats::connect(self.url()).await {
                Ok(client) => match client.request("$JS.API.INFO", "".into()).await {
                    Ok(reply) if !reply.payload.is_empty() => return Ok(()),
                    Ok(_) => last = "an empty JetStream info reply".to_owned(),
                    Err(error) => last = error.to_string(),
                },
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("nats-server not ready within {READY_WITHIN:?}: {last}")
    }

    /// Kills the server and reaps it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.halt()
            .map_err(|error| anyhow!("stopping nats-server: {error}"))
    }

    /// Kills the child unless it already exited, and reaps it.
    fn halt(&mut self) -> std::io::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
            self.child.wait()?;
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}
