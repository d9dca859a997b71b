#!/usr/bin/env node
// Joins a topic with the official phoenix.js client (over `ws`), prints
// {"event":"joined"}, then ends with {"ok":true,"payload":...} at the first
// message of --event on it.
//
// Usage: node tests/peers/listen_client.mjs listen --url ws://HOST:PORT/socket/websocket
//          [--topic T] [--event E]

import { Socket } from "phoenix"
import WebSocket from "ws"

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback
}
const url = option("--url")
const topic = option("--topic", "room:lobby")
const event = option("--event", "say")
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n")
const end = (ok, details) => {
  emit({ ok, ...details })
  setTimeout(() => process.exit(ok ? 0 : 1), 50)
}
setTimeout(() => end(false, { error: "timed out" }), 25000)
if (!url) {
  console.error("usage: node listen_client.mjs listen --url ws://HOST:PORT/socket/websocket")
  process.exit(2)
}

const socket = new Socket(url.replace(/\/$/, "").replace(/\/websocket$/, ""), { transport: WebSocket })
socket.connect()
const channel = socket.channel(topic, {})
channel.on(event, (payload) => end(true, { payload }))
channel.join()
  .receive("ok", () => emit({ event: "joined" }))
  .receive("error", (e) => end(false, { error: `join refused: ${JSON.stringify(e)}` }))
