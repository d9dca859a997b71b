//! A scripted Phoenix V2 server for wire-level client tests: it records
//! every frame a client sends (in order, per connection), answers
//! heartbeats and joins as told, and can push frames or close sockets on
//! command. Runs on tokio tasks of the test's runtime, on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// How the server answers a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinAnswer {
    /// `ok` at once.
    Ok,
    /// `ok` after a delay.
    OkAfter(Duration),
    /// `error` with reason `forbidden`.
    Error,
    /// No answer at all.
    Silent,
}

/// A frame the client sent.
#[derive(Debug, Clone)]
pub struct Seen {
    /// 0-based index of the connection it came on.
    pub connection: usize,
    /// When it arrived.
    pub at: Instant,
    /// The decoded V2 array.
    pub frame: Value,
}

impl Seen {
    /// The frame's event.
    pub fn event(&self) -> &str {
        self.frame[3].as_str().unwrap_or("")
    }
}

#[derive(Clone, Debug)]
enum Command {
    Send(String),
    SendFragmented(String, usize),
    Ping(Vec<u8>),
    Close(u16),
    Drop,
}

struct Behaviour {
    join: Vec<JoinAnswer>,
    heartbeats: bool,
    replies: bool,
}

/// The scripted server.
pub struct ScriptServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    commands: broadcast::Sender<Command>,
    arrivals: mpsc::UnboundedReceiver<Seen>,
    connections: Arc<Mutex<Vec<Instant>>>,
}

impl ScriptServer {
    /// Starts listening; joins answered ok, heartbeats and pushes answered.
    pub async fn start() -> ScriptServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour {
            join: Vec::new(),
            heartbeats: true,
            replies: true,
        }));
        let (commands, _) = broadcast::channel(64);
        let (arrived, arrivals) = mpsc::unbounded_channel();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let state = (
            seen.clone(),
            behaviour.clone(),
            commands.clone(),
            connections.clone(),
        );
        tokio::spawn(async move {
            let (seen, behaviour, commands, connections) = state;
            while let Ok((tcp, _)) = listener.accept().await {
                let index = {
                    let mut all = connections.lock().unwrap();
                    all.push(Instant::now());
                    all.len() - 1
                };
                let conn = Conn {
                    index,
                    seen: seen.clone(),
                    behaviour: behaviour.clone(),
                    arrived: arrived.clone(),
                };
                let commands = commands.subscribe();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                        conn.serve(ws, commands).await;
                    }
                });
            }
        });
        ScriptServer {
            addr,
            seen,
            behaviour,
            commands,
            arrivals,
            connections,
        }
    }

    /// The client's URL for this server.
    pub fn url(&self) -> String {
        format!("ws://{}/socket/websocket", self.addr)
    }

    /// Answers the next joins as listed (then `Ok` again).
    pub fn script_joins(&self, answers: &[JoinAnswer]) {
        self.behaviour.lock().unwrap().join = answers.to_vec();
    }

    /// Whether heartbeats are answered.
    pub fn answer_heartbeats(&self, on: bool) {
        self.behaviour.lock().unwrap().heartbeats = on;
    }

    /// Whether pushes (events other than joins/leaves/heartbeats) are answered.
    pub fn answer_pushes(&self, on: bool) {
        self.behaviour.lock().unwrap().replies = on;
    }

    /// Sends a raw frame to every live connection.
    pub fn send(&self, frame: Value) {
        let _ = self.commands.send(Command::Send(frame.to_string()));
    }

    /// Sends a text frame split into fragments of `chunk` bytes.
    pub fn send_fragmented(&self, frame: Value, chunk: usize) {
        let _ = self
            .commands
            .send(Command::SendFragmented(frame.to_string(), chunk));
    }

    /// Pings every live connection.
    pub fn ping(&self, payload: &[u8]) {
        let _ = self.commands.send(Command::Ping(payload.to_vec()));
    }

    /// Waits for a pong carrying `payload`.
    pub async fn pong(&mut self, payload: &[u8]) {
        let wanted = format!("pong:{}", String::from_utf8_lossy(payload));
        let _ = self.next(&wanted).await;
    }

    /// Closes every live connection with `code`.
    pub fn close_all(&self, code: u16) {
        let _ = self.commands.send(Command::Close(code));
    }

    /// Drops every live connection without a close frame.
    pub fn drop_all(&self) {
        let _ = self.commands.send(Command::Drop);
    }

    /// Every frame seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many connections were accepted.
    pub fn connection_count(&self) -> usize {
        self.connections.lock().unwrap().len()
    }

    /// When each connection was accepted.
    pub fn connection_times(&self) -> Vec<Instant> {
        self.connections.lock().unwrap().clone()
    }

    /// Waits for the next frame whose event is `event` (skipping others).
    pub async fn next(&mut self, event: &str) -> Seen {
        tokio::time::timeout(super::WAIT, async {
            loop {
                let seen = self.arrivals.recv().await.expect("server alive");
                if seen.event() == event {
                    return seen;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {event} frame in time"))
    }
}

struct Conn {
    index: usize,
    seen: Arc<Mutex<Vec<Seen>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    arrived: mpsc::UnboundedSender<Seen>,
}

impl Conn {
    async fn serve(
        self,
        ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        mut commands: broadcast::Receiver<Command>,
    ) {
        let (mut sink, mut stream) = ws.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Ok(Command::Send(text)) => { let _ = sink.send(Message::Text(text)).await; }
                    Ok(Command::SendFragmented(text, chunk)) => {
                        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
                        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
                        let bytes = text.into_bytes();
                        let parts: Vec<&[u8]> = bytes.chunks(chunk.max(1)).collect();
                        for (n, part) in parts.iter().enumerate() {
                            let opcode = if n == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
                            let frame = Frame::message(part.to_vec(), opcode, n + 1 == parts.len());
                            let _ = sink.send(Message::Frame(frame)).await;
                        }
                    }
                    Ok(Command::Ping(payload)) => { let _ = sink.send(Message::Ping(payload)).await; }
                    Ok(Command::Close(code)) => {
                        let frame = CloseFrame { code: CloseCode::from(code), reason: "scripted".into() };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        let _ = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
                        return;
                    }
                    Ok(Command::Drop) | Err(broadcast::error::RecvError::Closed) => return,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                },
                delayed = outgoing.recv() => {
                    if let Some(message) = delayed {
                        let _ = sink.send(message).await;
                    }
                }
                message = stream.next() => {
                    let Some(Ok(message)) = message else { return };
                    if let Message::Pong(payload) = &message {
                        // Recorded as a pseudo-frame so tests can await it.
                        let event = format!("pong:{}", String::from_utf8_lossy(payload));
                        let seen = Seen { connection: self.index, at: Instant::now(), frame: json!([null, null, "", event, {}]) };
                        let _ = self.arrived.send(seen);
                        continue;
                    }
                    let Message::Text(text) = message else { continue };
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                    let seen = Seen { connection: self.index, at: Instant::now(), frame: frame.clone() };
                    self.seen.lock().unwrap().push(seen.clone());
                    let _ = self.arrived.send(seen);
                    if let Some((answer, delay)) = self.answer(&frame) {
                        match delay {
                            Some(delay) => {
                                let out = out.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(delay).await;
                                    let _ = out.send(answer);
                                });
                            }
                            None => { let _ = sink.send(answer).await; }
                        }
                    }
                }
            }
        }
    }

    fn answer(&self, frame: &Value) -> Option<(Message, Option<Duration>)> {
        let (jr, r, topic, event) = (&frame[0], &frame[1], &frame[2], frame[3].as_str()?);
        let mut behaviour = self.behaviour.lock().unwrap();
        let reply = |status: &str, response: Value| {
            Message::Text(
                json!([jr, r, topic, "phx_reply", {"status": status, "response": response}])
                    .to_string(),
            )
        };
        match event {
            "heartbeat" => behaviour.heartbeats.then(|| (reply("ok", json!({})), None)),
            "phx_join" => {
                let answer = if behaviour.join.is_empty() {
                    JoinAnswer::Ok
                } else {
                    behaviour.join.remove(0)
                };
                match answer {
                    JoinAnswer::Ok => Some((reply("ok", json!({"connection": self.index})), None)),
                    JoinAnswer::OkAfter(delay) => {
                        Some((reply("ok", json!({"connection": self.index})), Some(delay)))
                    }
                    JoinAnswer::Error => {
                        Some((reply("error", json!({"reason": "forbidden"})), None))
                    }
                    JoinAnswer::Silent => None,
                }
            }
            "phx_leave" => Some((reply("ok", json!({})), None)),
            _ => behaviour
                .replies
                .then(|| (reply("ok", frame[4].clone()), None)),
        }
    }
}
