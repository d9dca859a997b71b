#!/usr/bin/env node
// Drives switchboard's Phoenix endpoint with the official `phoenix` npm client,
// using the `ws` package as its WebSocket transport (Node 20 has no global
// WebSocket, and without one phoenix.js would silently fall back to LongPoll).
//
// Usage:
//   node tests/peers/phoenix_client.mjs <scenario> --url ws://127.0.0.1:PORT/socket/websocket
//        [--topic T] [--count N] [--token TOKEN] [--token-param [TOKEN]]
//        [--timeout MS] [--debug]
//
// Every scenario prints exactly one JSON result line on stdout ({"ok":true,...}
// or {"ok":false,"error":...}) and exits 0 on success, 1 on failure. The
// `rejoin` scenario first prints {"event":"joined"}; its last line is the result.
// Diagnostics go to stderr only.

import { isDeepStrictEqual } from "node:util"
import { Socket } from "phoenix"
import WebSocket from "ws"

const SCENARIOS = [
  "join", "ping", "rtt", "broadcast", "unmatched", "duplicate_join", "leave",
  "heartbeat", "auth_ok", "auth_refused", "rejoin",
]

const USAGE = `usage: node phoenix_client.mjs <scenario> --url ws://HOST:PORT/socket/websocket
  [--topic T] [--count N] [--token TOKEN] [--token-param [TOKEN]] [--timeout MS] [--debug]
scenarios: ${SCENARIOS.join(", ")}`

// ---------------------------------------------------------------- output

let finished = false
const sockets = []

function log(...args) {
  console.error("[phoenix_client]", ...args)
}

function emit(obj) {
  // stdout is a pipe or a file in the tests; both are written synchronously on Linux.
  process.stdout.write(JSON.stringify(obj) + "\n")
}

function finish(ok, details = {}) {
  if (finished) return
  finished = true
  emit({ ok, ...details })
  for (const socket of sockets) {
    try { socket.disconnect() } catch (e) { log("disconnect failed:", e.message) }
  }
  // give the close frames a moment to leave, then end whatever is still pending
  setTimeout(() => process.exit(ok ? 0 : 1), 50)
}

const fail = (error, details = {}) => finish(false, { error, ...details })

process.on("uncaughtException", (e) => fail(`exception: ${e && e.stack || e}`))
process.on("unhandledRejection", (e) => fail(`rejection: ${e && e.stack || e}`))

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const opts = { scenario: null, url: null, topic: null, count: null, token: null,
    tokenParam: false, timeoutMs: null, debug: false }
  const value = (i, name) => {
    if (i >= argv.length || argv[i].startsWith("--")) throw new Error(`${name} needs a value`)
    return argv[i]
  }
  const number = (s, name) => {
    const n = Number(s)
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${s}`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    let inline = null
    if (arg.startsWith("--") && arg.includes("=")) {
      inline = arg.slice(arg.indexOf("=") + 1)
      arg = arg.slice(0, arg.indexOf("="))
    }
    const take = (name) => inline !== null ? inline : value(++i, name)
    switch (arg) {
      case "--url": opts.url = take(arg); break
      case "--topic": opts.topic = take(arg); break
      case "--count": opts.count = number(take(arg), arg); break
      case "--token": opts.token = take(arg); break
      case "--timeout": opts.timeoutMs = number(take(arg), arg); break
      case "--debug": opts.debug = true; break
      case "--token-param":
        // either a modifier (`--token T --token-param`) or carrying the token itself
        opts.tokenParam = true
        if (inline !== null) opts.token = inline
        else if (i + 1 < argv.length && !argv[i + 1].startsWith("--") && opts.scenario !== null) opts.token = argv[++i]
        break
      case "-h": case "--help": console.error(USAGE); process.exit(0); break
      default:
        if (arg.startsWith("-")) throw new Error(`unknown option ${arg}`)
        if (opts.scenario !== null) throw new Error(`unexpected argument ${arg}`)
        opts.scenario = arg
    }
  }
  if (!opts.scenario) throw new Error("missing scenario")
  if (!SCENARIOS.includes(opts.scenario)) throw new Error(`unknown scenario ${opts.scenario}`)
  if (!opts.url) throw new Error("missing --url")
  return opts
}

let opts
try {
  opts = parseArgs(process.argv.slice(2))
} catch (e) {
  console.error(USAGE)
  fail(`bad arguments: ${e.message}`)
}

// ---------------------------------------------------------------- transport

// Phoenix's Socket appends `/websocket` to the endpoint it is given, so the
// conventional `ws://host/socket/websocket` is turned back into `ws://host/socket`.
function endpointFromUrl(url) {
  const u = new URL(url)
  if (!/^wss?:$/.test(u.protocol)) throw new Error(`--url must be ws:// or wss://, got ${url}`)
  if (u.search) throw new Error("--url must not carry a query; phoenix adds vsn and params")
  return u.toString().replace(/\/$/, "").replace(/\/websocket$/, "")
}

// Every frame either way, decoded, with the WebSocket that carried it, so that
// scenarios can check what went over the wire (phoenix.js hides some of it,
// e.g. it resolves leave() locally without waiting for the server's reply).
const wire = []

function decodeFrame(data) {
  try {
    const frame = JSON.parse(typeof data === "string" ? data : data.toString())
    return Array.isArray(frame) ? frame : { invalid: String(data) }
  } catch {
    return { invalid: String(data) }
  }
}

let wsSeq = 0
class TracedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols)
    this.traceId = ++wsSeq
    this.requestedProtocols = protocols || []
    log(`ws#${this.traceId} dial ${url}${protocols ? ` protocols=${JSON.stringify(protocols)}` : ""}`)
    this.on("message", (data, isBinary) => {
      wire.push({ ws: this.traceId, dir: "in", frame: isBinary ? { binary: data.length } : decodeFrame(data) })
    })
    this.on("open", () => log(`ws#${this.traceId} open protocol=${JSON.stringify(this.protocol)}`))
    this.on("close", (code, reason) => log(`ws#${this.traceId} close ${code} ${reason}`))
    this.on("error", (e) => log(`ws#${this.traceId} error ${e.message}`))
  }

  send(data, ...rest) {
    wire.push({ ws: this.traceId, dir: "out", frame: decodeFrame(data) })
    return super.send(data, ...rest)
  }
}

// [join_ref, ref, topic, event, payload] frames received so far, optionally filtered
const inbound = (pred = () => true) =>
  wire.filter((w) => w.dir === "in" && Array.isArray(w.frame) && pred(w.frame)).map((w) => w.frame)

// one short line per frame, for reports
const wireSummary = () => wire.map(({ ws, dir, frame }) => {
  if (!Array.isArray(frame)) return `${dir === "in" ? "<" : ">"}#${ws} ${JSON.stringify(frame)}`
  const [jr, ref, topic, event, payload] = frame
  const status = event === "phx_reply" && payload ? ` ${payload.status}` : ""
  return `${dir === "in" ? "<" : ">"}#${ws} [${jr},${ref}] ${topic} ${event}${status}`
})

function makeSocket({ heartbeatIntervalMs, reconnectAfterMs, rejoinAfterMs } = {}) {
  const params = {}
  let authToken
  if (opts.token !== null) {
    if (opts.tokenParam) params.token = opts.token
    else authToken = opts.token
  }
  const socket = new Socket(endpointFromUrl(opts.url), {
    transport: TracedWebSocket,
    longPollFallbackMs: undefined,
    params,
    authToken,
    timeout: 5000,
    heartbeatIntervalMs,
    reconnectAfterMs: reconnectAfterMs || ((tries) => [100, 200, 500][tries - 1] || 1000),
    rejoinAfterMs: rejoinAfterMs || ((tries) => [200, 500][tries - 1] || 1000),
    logger: opts.debug ? (kind, msg, data) => log(`${kind}: ${msg}`, data === undefined ? "" : JSON.stringify(data)) : undefined,
  })
  if (socket.transport !== TracedWebSocket) throw new Error("phoenix did not take the ws transport")
  sockets.push(socket)
  return socket
}

// Fail the scenario on a transport error unless `allowed()` says it is expected.
function failOnTransportError(socket, allowed = () => false) {
  socket.onError((err) => {
    if (allowed()) return
    fail(`connection error: ${err && err.message || err}`, { url: socket.endPointURL() })
  })
}

function transportInfo(socket) {
  const conn = socket.conn
  return {
    transport: conn instanceof WebSocket ? "websocket" : (conn ? conn.constructor.name : null),
    protocol: conn && conn.protocol || null,
  }
}

// join `topic` on `socket`; calls back with ok / error / timeout
function join(socket, topic, { ok, error, timeout } = {}) {
  const channel = socket.channel(topic, {})
  channel.join()
    .receive("ok", (resp) => ok ? ok(resp, channel) : undefined)
    .receive("error", (resp) => error ? error(resp, channel) : fail("join refused", { topic, response: resp }))
    .receive("timeout", () => timeout ? timeout(channel) : fail("join timeout", { topic }))
  return channel
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.max(1, Math.ceil(p * sorted.length))
  return sorted[Math.min(rank, sorted.length) - 1]
}

// ---------------------------------------------------------------- scenarios

const scenarios = {
  join() {
    const topic = opts.topic || "room:lobby"
    const socket = makeSocket()
    failOnTransportError(socket)
    socket.connect()
    join(socket, topic, {
      ok: (response, channel) => {
        if (channel.state !== "joined") return fail("join ok but channel not joined", { state: channel.state })
        finish(true, { topic, response, join_ref: channel.joinRef(), ...transportInfo(socket) })
      },
    })
  },

  ping() {
    const topic = opts.topic || "room:lobby"
    const payload = { n: 1 }
    const socket = makeSocket()
    failOnTransportError(socket)
    socket.connect()
    join(socket, topic, {
      ok: (_resp, channel) => {
        channel.push("ping", payload)
          .receive("ok", (response) => {
            if (isDeepStrictEqual(response, payload)) finish(true, { topic, response })
            else fail("ping reply differs from payload", { sent: payload, response })
          })
          .receive("error", (response) => fail("ping answered error", { response }))
          .receive("timeout", () => fail("ping timeout"))
      },
    })
  },

  rtt() {
    const topic = opts.topic || "room:lobby"
    const count = opts.count || 1000
    const socket = makeSocket()
    failOnTransportError(socket)
    socket.connect()
    const samples = []
    join(socket, topic, {
      ok: (_resp, channel) => {
        const next = (i) => {
          if (i === count) {
            const sorted = samples.slice().sort((a, b) => a - b)
            return finish(true, {
              count,
              p50_us: percentile(sorted, 0.5),
              p99_us: percentile(sorted, 0.99),
              max_us: sorted[sorted.length - 1],
              mean_us: Math.round(samples.reduce((a, b) => a + b, 0) / samples.length),
            })
          }
          const payload = { n: i }
          const start = process.hrtime.bigint()
          channel.push("ping", payload)
            .receive("ok", (response) => {
              samples.push(Number((process.hrtime.bigint() - start) / 1000n))
              if (!isDeepStrictEqual(response, payload)) {
                return fail("ping reply differs from payload", { index: i, sent: payload, response })
              }
              next(i + 1)
            })
            .receive("error", (response) => fail("ping answered error", { index: i, response }))
            .receive("timeout", () => fail("ping timeout", { index: i }))
        }
        next(0)
      },
    })
  },

  broadcast() {
    const topic = opts.topic || "room:lobby"
    const count = opts.count || 3
    const payload = { body: "hi" }
    const received = new Array(count).fill(0)
    const channels = []
    let joined = 0
    let reply = null
    let settle = null

    const check = () => {
      if (reply === null || received.some((n) => n === 0)) return
      // everyone has it once: wait a little longer to catch duplicates
      if (settle) return
      settle = setTimeout(() => {
        const shoutFrames = inbound(([, , t, e]) => t === topic && e === "shout")
        const details = {
          count, received, reply,
          frame_refs: shoutFrames.map(([jr, ref]) => [jr, ref]),
        }
        if (reply.status !== "ok") return fail("shout answered error", details)
        if (received.every((n) => n === 1)) finish(true, details)
        else fail("shout not received exactly once by every member", details)
      }, 300)
    }

    for (let i = 0; i < count; i++) {
      const socket = makeSocket()
      failOnTransportError(socket)
      socket.connect()
      const channel = join(socket, topic, {
        ok: () => {
          joined += 1
          if (joined !== count) return
          channels[0].push("shout", payload)
            .receive("ok", (response) => { reply = { status: "ok", response }; check() })
            .receive("error", (response) => { reply = { status: "error", response }; check() })
            .receive("timeout", () => fail("shout reply timeout", { received }))
        },
      })
      channel.on("shout", (got) => {
        if (!isDeepStrictEqual(got, payload)) return fail("shout payload differs", { socket: i, got })
        received[i] += 1
        check()
      })
      channels.push(channel)
    }
  },

  unmatched() {
    const topic = opts.topic || "nope:1"
    const socket = makeSocket()
    failOnTransportError(socket)
    socket.connect()
    join(socket, topic, {
      ok: (response) => fail("join of an unmatched topic was accepted", { topic, response }),
      error: (response) => {
        const frame = inbound(([, , t, e]) => t === topic && e === "phx_reply")[0]
        const details = { topic, response, reply_join_ref: frame ? frame[0] : undefined }
        if (response && response.reason === "unmatched topic") finish(true, details)
        else fail("wrong refusal reason", details)
      },
    })
  },

  duplicate_join() {
    const topic = opts.topic || "room:lobby"
    const socket = makeSocket()
    failOnTransportError(socket)
    socket.connect()
    let firstClosed = null
    let secondJoin = null
    let done = false
    const report = (first, second) => {
      if (done || firstClosed === null || secondJoin === null) return
      done = true
      // wait a little for the server's own frames about the first join (reply to
      // the leave phoenix.js sends, phx_close) to show up in the wire log
      setTimeout(() => {
        const closes = inbound(([jr, , t, e]) => t === topic && e === "phx_close" && jr === first.firstJoinRef)
        const details = {
          topic,
          second_join: secondJoin,
          first_closed: firstClosed,
          first_state: first.state,
          second_state: second.state,
          first_join_ref: first.firstJoinRef,
          second_join_ref: second.joinRef(),
          client_sent_leave: wire.some((w) => w.dir === "out" && Array.isArray(w.frame) &&
            w.frame[3] === "phx_leave" && w.frame[0] === first.firstJoinRef),
          server_phx_close_for_first: closes.length > 0,
          wire: wireSummary(),
        }
        if (secondJoin.status === "ok" && firstClosed.fired && first.state === "closed") finish(true, details)
        else fail("duplicate join did not replace the first channel", details)
      }, 300)
    }
    const first = join(socket, topic, {
      ok: () => {
        first.firstJoinRef = first.joinRef()
        const second = join(socket, topic, {
          ok: (response) => { secondJoin = { status: "ok", response }; report(first, second) },
          error: (response) => { secondJoin = { status: "error", response }; report(first, second) },
        })
        // phoenix.js's rejoin() leaves an open channel of the same topic itself
        // (socket.leaveOpenTopic) before sending the second join.
      },
    })
    first.onClose((payload) => {
      firstClosed = { fired: true, payload: payload === undefined ? null : payload }
    })
  },

  leave() {
    const topic = opts.topic || "room:lobby"
    const socket = makeSocket()
    failOnTransportError(socket)
    socket.connect()
    let closed = false
    join(socket, topic, {
      ok: (_resp, channel) => {
        const joinRef = channel.joinRef()
        channel.onClose(() => { closed = true })
        const leavePush = channel.leave()
        let localOk = false
        leavePush.receive("ok", () => { localOk = true })
          .receive("timeout", () => fail("leave timeout"))
        const leaveRef = leavePush.ref
        // phoenix.js resolves leave() locally at once, so the server's reply is
        // only visible on the wire: wait for it (and its phx_close)
        const started = Date.now()
        const poll = setInterval(() => {
          const reply = inbound(([, ref, t, e]) => t === topic && e === "phx_reply" && ref === leaveRef)[0]
          const close = inbound(([jr, , t, e]) => t === topic && e === "phx_close" && jr === joinRef)[0]
          if (!(reply && close) && Date.now() - started < 2000) return
          clearInterval(poll)
          const details = {
            topic,
            state: channel.state,
            on_close_fired: closed,
            server_reply: reply ? reply[4] : null,
            server_phx_close: close ? close : null,
          }
          if (!localOk || !closed || channel.state !== "closed") return fail("channel did not close", details)
          if (!reply) return fail("no leave reply from the server", details)
          if (reply[4].status !== "ok") return fail("leave answered error", details)
          finish(true, details)
        }, 20)
      },
    })
  },

  heartbeat() {
    const socket = makeSocket({ heartbeatIntervalMs: 200 })
    failOnTransportError(socket)
    let closes = 0
    socket.onClose(() => { closes += 1 })
    const sent = new Set()
    let replies = 0
    let firstReply = null
    socket.onMessage(({ topic, event, payload, ref }) => {
      if (topic === "phoenix" && event === "phx_reply" && payload && payload.status === "ok") {
        replies += 1
        if (firstReply === null) firstReply = inbound(([, r, t]) => t === "phoenix" && r === ref)[0] || null
      }
    })
    socket.onOpen(() => {
      setTimeout(() => {
        for (const w of wire) {
          if (w.dir === "out" && Array.isArray(w.frame) && w.frame[2] === "phoenix" && w.frame[3] === "heartbeat") sent.add(w.frame[1])
        }
        const details = {
          heartbeats_sent: sent.size, replies, closes, connected: socket.isConnected(),
          first_reply: firstReply, ...transportInfo(socket),
        }
        if (!socket.isConnected() || closes > 0) return fail("socket did not stay open", details)
        if (replies < 3) return fail("too few heartbeat replies", details)
        finish(true, details)
      }, 1100)
    })
    socket.connect()
  },

  auth_ok() {
    if (opts.token === null) return fail("auth_ok needs --token")
    const topic = opts.topic || "room:lobby"
    const socket = makeSocket()
    failOnTransportError(socket)
    socket.connect()
    join(socket, topic, {
      ok: (response) => finish(true, {
        topic, response, token_via: opts.tokenParam ? "param" : "subprotocol",
        requested_protocols: socket.conn.requestedProtocols, ...transportInfo(socket),
      }),
    })
  },

  auth_refused() {
    if (opts.token === null) return fail("auth_refused needs --token")
    const topic = opts.topic || "room:lobby"
    const socket = makeSocket()
    const errors = []
    let opened = 0
    let joinReplies = 0
    socket.onError((err) => errors.push(err && err.message || String(err)))
    socket.onOpen(() => { opened += 1 })
    socket.connect()
    join(socket, topic, {
      ok: () => { joinReplies += 1 },
      error: () => { joinReplies += 1 },
      timeout: () => {},
    })
    setTimeout(() => {
      const statuses = errors.map((m) => (/Unexpected server response: (\d+)/.exec(m) || [])[1])
        .filter(Boolean).map(Number)
      const details = {
        token_via: opts.tokenParam ? "param" : "subprotocol",
        errors: errors.length, first_error: errors[0] || null,
        http_status: statuses.length ? statuses[0] : null, opened, join_replies: joinReplies,
      }
      // a refused upgrade (HTTP 4xx) is what we want; ECONNREFUSED only means no server
      if (opened > 0 || joinReplies > 0) fail("connection was not refused", details)
      else if (details.http_status === null) fail("no HTTP refusal seen (is the server up?)", details)
      else finish(true, details)
    }, 2000)
  },

  rejoin() {
    const topic = opts.topic || "room:lobby"
    const socket = makeSocket({ reconnectAfterMs: () => 100, rejoinAfterMs: () => 100 })
    let joins = 0
    let opens = 0
    let closes = 0
    socket.onOpen(() => { opens += 1 })
    socket.onClose(() => { closes += 1 })
    failOnTransportError(socket, () => joins > 0)
    socket.connect()
    join(socket, topic, {
      ok: (_resp, channel) => {
        joins += 1
        log(`join ok #${joins} join_ref=${channel.joinRef()}`)
        if (joins === 1) return emit({ event: "joined" })
        if (joins !== 2) return
        const payload = { n: 2 }
        channel.push("ping", payload)
          .receive("ok", (response) => {
            const details = { rejoined: true, joins, opens, closes }
            if (isDeepStrictEqual(response, payload)) finish(true, details)
            else fail("ping after rejoin differs from payload", { ...details, response })
          })
          .receive("error", (response) => fail("ping after rejoin answered error", { response }))
          .receive("timeout", () => fail("ping after rejoin timeout"))
      },
      // while the server restarts a join may be refused or time out: phoenix retries
      error: (response) => { if (joins === 0) fail("join refused", { topic, response }) },
      timeout: () => { if (joins === 0) fail("join timeout", { topic }) },
    })
  },
}

// ---------------------------------------------------------------- main

if (!finished) {
  const timeoutMs = opts.timeoutMs || (opts.scenario === "rejoin" ? 20000 : 10000)
  setTimeout(() => fail("timeout", { scenario: opts.scenario, wire_tail: wireSummary().slice(-10) }), timeoutMs)
  log(`scenario ${opts.scenario} url ${opts.url}`)
  try {
    scenarios[opts.scenario]()
  } catch (e) {
    fail(`exception: ${e && e.message || e}`)
  }
}
