#!/usr/bin/env node
// The official phoenix.js client (over `ws`) as one member of a cluster test.
//
//   collect  --topic T --event E --count N
//       joins, prints {"event":"joined"}, gathers the `n` of every E until N
//       arrived, waits 300 ms for any duplicate, then prints
//       {"ok":true,"received":[n...]}.
//   push     --topic T --event E --count N --from F
//       joins, pushes N messages {"n": i, "from": F} one after another
//       (each waits for its reply), prints {"ok":true,"pushed":N}.
//   presence --topic T --user U
//       joins as U and prints {"event":"users","users":{key: metas}} at
//       every presence sync, {"event":"leave","key":K} whenever a key is
//       left with no meta, until stdin closes; then {"ok":true}.
//
// Usage: node cluster_client.mjs SCENARIO --url ws://HOST:PORT/socket [options]

import { Socket, Presence } from "phoenix"
import WebSocket from "ws"

const args = process.argv.slice(2)
const scenario = args[0]
const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback
}
const url = option("--url")
const topic = option("--topic", "room:lobby")
const event = option("--event", "say")
const count = Number(option("--count", "10"))
let ended = false
const emit = (obj) => { if (!ended) process.stdout.write(JSON.stringify(obj) + "\n") }
const end = (ok, details) => {
  emit({ ok, ...details })
  ended = true
  setTimeout(() => process.exit(ok ? 0 : 1), 50)
}
if (!url) {
  console.error("usage: node cluster_client.mjs SCENARIO --url ws://HOST:PORT/socket")
  process.exit(2)
}
const limit = scenario === "presence" ? 120000 : 40000
setTimeout(() => end(false, { error: "timed out" }), limit)

const socket = new Socket(url, {
  transport: WebSocket,
  reconnectAfterMs: () => 100,
  rejoinAfterMs: () => 200,
})
socket.connect()

const scenarios = {
  collect() {
    const channel = socket.channel(topic, {})
    const received = []
    channel.on(event, (payload) => {
      received.push(payload.n)
      if (received.length === count) {
        setTimeout(() => end(true, { received }), 300)
      }
    })
    channel.join()
      .receive("ok", () => emit({ event: "joined" }))
      .receive("error", (e) => end(false, { error: `join refused: ${JSON.stringify(e)}` }))
  },
  push() {
    const from = option("--from", "?")
    const channel = socket.channel(topic, {})
    const pushOne = (i) => {
      if (i > count) return end(true, { pushed: count })
      channel.push(event, { n: `${from}-${i}`, from })
        .receive("ok", () => pushOne(i + 1))
        .receive("error", (e) => end(false, { error: `push refused: ${JSON.stringify(e)}` }))
        .receive("timeout", () => end(false, { error: "push timed out" }))
    }
    channel.join()
      .receive("ok", () => { emit({ event: "joined" }); pushOne(1) })
      .receive("error", (e) => end(false, { error: `join refused: ${JSON.stringify(e)}` }))
  },
  presence() {
    const user = option("--user", "anon")
    const channel = socket.channel(topic, { user })
    const presence = new Presence(channel)
    presence.onLeave((key, current) => {
      if (!current || current.metas.length === 0) emit({ event: "leave", key })
    })
    presence.onSync(() => {
      const users = {}
      presence.list((key, { metas }) => { users[key] = metas.length })
      emit({ event: "users", users })
    })
    channel.join()
      .receive("ok", () => emit({ event: "joined" }))
      .receive("error", (e) => end(false, { error: `join refused: ${JSON.stringify(e)}` }))
    process.stdin.on("end", () => end(true, {}))
    process.stdin.resume()
  },
}

if (!scenarios[scenario]) {
  console.error(`unknown scenario ${scenario}`)
  process.exit(2)
}
scenarios[scenario]()
