#!/usr/bin/env node
// phoenix.js over its LongPoll transport (Node 20's fetch), against
// switchboard's /socket/longpoll.
//
// Usage: node tests/peers/longpoll_client.mjs <scenario> --url ws://HOST:PORT/socket/websocket
// Scenarios:
//   chat      a LongPoll client and a WebSocket client join room:lp; each hears
//             the other's shout; prints {"ok":true,...}
//   fallback  a client with longPollFallbackMs joins room:lp and prints
//             {"event":"joined"}; after the hub restarts, it rejoins by itself
//             (over whichever transport) and prints {"ok":true,"transport":...}

import { Socket, LongPoll } from "phoenix"
import WebSocket from "ws"

const args = process.argv.slice(2)
const scenario = args[0]
const url = args[args.indexOf("--url") + 1]
const endpoint = url.replace(/\/$/, "").replace(/\/websocket$/, "")
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n")
const sockets = []
let finished = false
const finish = (ok, details = {}) => {
  if (finished) return
  finished = true
  emit({ ok, ...details })
  for (const socket of sockets) socket.disconnect()
  setTimeout(() => process.exit(ok ? 0 : 1), 50)
}
process.on("uncaughtException", (e) => finish(false, { error: String(e && e.stack || e) }))
setTimeout(() => finish(false, { error: "timed out" }), 25000)

function socket(opts) {
  const s = new Socket(endpoint, {
    reconnectAfterMs: (tries) => [50, 100, 200][tries - 1] || 300,
    rejoinAfterMs: (tries) => [100, 200][tries - 1] || 300,
    ...opts,
  })
  sockets.push(s)
  s.connect()
  return s
}

const scenarios = {
  chat() {
    const lp = socket({ transport: LongPoll }).channel("room:lp", {})
    const ws = socket({ transport: WebSocket }).channel("room:lp", {})
    const heard = { lp: null, ws: null }
    const check = () => { if (heard.lp && heard.ws) finish(true, heard) }
    lp.on("shout", (p) => { if (p.from === "ws") { heard.lp = p; check() } })
    ws.on("shout", (p) => { if (p.from === "longpoll") { heard.ws = p; check() } })
    let joined = 0
    const both = () => {
      joined += 1
      if (joined < 2) return
      lp.push("shout", { from: "longpoll" })
      ws.push("shout", { from: "ws" })
    }
    lp.join().receive("ok", both).receive("error", (e) => finish(false, { error: JSON.stringify(e) }))
    ws.join().receive("ok", both).receive("error", (e) => finish(false, { error: JSON.stringify(e) }))
  },

  fallback() {
    const s = socket({ transport: WebSocket, longPollFallbackMs: 300 })
    const channel = s.channel("room:lp", {})
    let joins = 0
    channel.join().receive("ok", () => {
      joins += 1
      if (joins === 1) emit({ event: "joined" })
    })
    channel.on("phx_reply", () => {})
    // A rejoin re-sends phx_join; its ok reply counts as the second join.
    const rejoined = setInterval(() => {
      if (joins >= 1 && channel.state === "joined" && s.isConnected() && channel.joinPush.receivedResp && channel.rejoinTimer.tries === 0 && sawClose) {
        clearInterval(rejoined)
        finish(true, { transport: s.transport === LongPoll ? "longpoll" : "websocket" })
      }
    }, 50)
    let sawClose = false
    s.onClose(() => { sawClose = true })
  },
}

if (!url || !scenarios[scenario]) {
  console.error("usage: node longpoll_client.mjs chat|fallback --url ws://HOST:PORT/socket/websocket")
  process.exit(2)
}
scenarios[scenario]()
