#!/usr/bin/env node
// Drives switchboard's presence with the official phoenix.js `Presence`
// (over the `ws` package).
//
// Usage:
//   node tests/peers/presence_client.mjs <scenario> --url ws://HOST:PORT/socket/websocket
//        [--topic T] [--user NAME]
//
// Scenarios:
//   observe  join as --user; after every onSync print {"event":"sync","list":{key:[metas]}};
//            ends when stdin closes, printing {"ok":true}
//   pair     ann and bob join; both lists show both; bob leaves; ann's list drops
//            bob within one diff; prints {"ok":true,...}
//   rejoin   join as --user; print {"event":"joined"} after the first sync; after
//            the socket comes back and the channel rejoined, the list holds the
//            user once, with one meta, and no key twice; prints {"ok":true,...}
//
// Diagnostics go to stderr; every scenario's last stdout line is its result.

import { Socket, Presence } from "phoenix"
import WebSocket from "ws"

const args = process.argv.slice(2)
const scenario = args[0]
const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback
}
const url = option("--url")
const topic = option("--topic", "room:presence")
const user = option("--user", "ann")

const sockets = []
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n")
let finished = false
function finish(ok, details = {}) {
  if (finished) return
  finished = true
  emit({ ok, ...details })
  for (const socket of sockets) socket.disconnect()
  setTimeout(() => process.exit(ok ? 0 : 1), 50)
}
process.on("uncaughtException", (e) => finish(false, { error: String(e && e.stack || e) }))
setTimeout(() => finish(false, { error: "timed out" }), 25000)

function endpoint() {
  return url.replace(/\/$/, "").replace(/\/websocket$/, "")
}

function join(name) {
  const socket = new Socket(endpoint(), {
    transport: WebSocket,
    reconnectAfterMs: (tries) => [50, 100, 200][tries - 1] || 500,
    rejoinAfterMs: (tries) => [100, 200][tries - 1] || 500,
  })
  sockets.push(socket)
  socket.connect()
  const channel = socket.channel(topic, { user: name })
  const presence = new Presence(channel)
  channel.join().receive("error", (e) => finish(false, { error: `join refused: ${JSON.stringify(e)}` }))
  return { socket, channel, presence }
}

const listOf = (presence) =>
  Object.fromEntries(presence.list((key, { metas }) => [key, metas]))

const scenarios = {
  observe() {
    const { presence } = join(user)
    presence.onSync(() => emit({ event: "sync", list: listOf(presence) }))
    process.stdin.on("end", () => finish(true))
    process.stdin.resume()
  },

  pair() {
    const ann = join("ann")
    const bob = join("bob")
    let left = false
    let diffsSinceLeave = 0
    const both = (p) => {
      const keys = Object.keys(listOf(p))
      return keys.includes("ann") && keys.includes("bob")
    }
    const check = () => {
      if (!left && both(ann.presence) && both(bob.presence)) {
        left = true
        bob.channel.leave()
        return
      }
      if (left) {
        diffsSinceLeave += 1
        const list = listOf(ann.presence)
        if (!("bob" in list)) {
          finish(diffsSinceLeave === 1, { list, diffsSinceLeave })
        }
      }
    }
    ann.presence.onSync(check)
    bob.presence.onSync(() => { if (!left) check() })
  },

  rejoin() {
    const { channel, presence } = join(user)
    let firstRef = null
    presence.onSync(() => {
      const list = listOf(presence)
      if (firstRef === null) {
        firstRef = channel.joinRef()
        emit({ event: "joined" })
        return
      }
      if (channel.joinRef() === firstRef) return
      const own = list[user] || []
      const refs = Object.values(list).flat().map((m) => m.phx_ref)
      const distinct = new Set(refs).size === refs.length
      if (own.length === 1 && distinct) finish(true, { list, rejoined: true })
    })
  },
}

if (!url || !scenarios[scenario]) {
  console.error("usage: node presence_client.mjs observe|pair|rejoin --url ws://HOST:PORT/socket/websocket")
  process.exit(2)
}
scenarios[scenario]()
