#!/usr/bin/env node
// Loads switchboard's dashboard in headless Chromium, driven over the Chrome
// DevTools Protocol (with the `ws` package), while phoenix.js clients join
// and leave and an ingest sender sends data; checks the figures the page
// shows against the hub's /health (and the items sent), and takes
// screenshots.
//
// Usage:
//   node tests/peers/dashboard_browser.mjs check --url http://HOST:PORT --dashboard /dashboard
//        --chromium /usr/bin/chromium --out DIR
//
// Prints {"event":...} lines as it goes, then one JSON result line
// ({"ok":true,...} or {"ok":false,"error":...}); exits 0 on success.
// Diagnostics go to stderr.

import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join as joinPath } from "node:path"
import { Socket } from "phoenix"
import WebSocket from "ws"

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback
}
const base = option("--url")
const page = base + option("--dashboard", "/dashboard")
const chromiumPath = option("--chromium", "chromium")
const out = option("--out", tmpdir())
const WAIT = 15000

const log = (...a) => console.error("[dashboard_browser]", ...a)
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n")
const profile = mkdtempSync(joinPath(tmpdir(), "switchboard-chromium-"))
let chromium = null
const sockets = []
let finished = false

function finish(ok, details = {}) {
  if (finished) return
  finished = true
  emit({ ok, ...details })
  for (const socket of sockets) socket.disconnect()
  if (chromium) chromium.kill("SIGKILL")
  setTimeout(() => {
    rmSync(profile, { recursive: true, force: true })
    process.exit(ok ? 0 : 1)
  }, 200)
}
process.on("uncaughtException", (e) => finish(false, { error: String((e && e.stack) || e) }))
process.on("unhandledRejection", (e) => finish(false, { error: String((e && e.stack) || e) }))
setTimeout(() => finish(false, { error: "timed out" }), 90000)

// ------------------------------------------------------------ chromium

/** Starts Chromium; resolves with its DevTools WebSocket URL. */
function launch() {
  chromium = spawn(chromiumPath, [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
    "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe"] })
  return new Promise((resolve, reject) => {
    let seen = ""
    const timer = setTimeout(() => reject(new Error(`chromium did not start: ${seen}`)), WAIT)
    chromium.stderr.on("data", (chunk) => {
      seen += chunk
      const found = /DevTools listening on (ws:\/\/\S+)/.exec(seen)
      if (found) {
        clearTimeout(timer)
        resolve(found[1])
      }
    })
    chromium.on("exit", (code) => reject(new Error(`chromium exited ${code}: ${seen}`)))
  })
}

/** A DevTools connection: send(method, params, session) answers the result. */
async function devtools(url) {
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
  let next = 0
  const waiting = new Map()
  const listeners = []
  ws.on("message", (data) => {
    const message = JSON.parse(data)
    if (message.id != null && waiting.has(message.id)) {
      const { resolve, reject } = waiting.get(message.id)
      waiting.delete(message.id)
      message.error ? reject(new Error(JSON.stringify(message.error))) : resolve(message.result)
    } else if (message.method) {
      for (const listener of listeners) listener(message)
    }
  })
  return {
    send(method, params = {}, sessionId) {
      const id = ++next
      ws.send(JSON.stringify({ id, method, params, sessionId }))
      return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }))
    },
    on(listener) { listeners.push(listener) },
  }
}

// ------------------------------------------------------------ the hub

async function health() {
  const response = await fetch(base + "/health")
  return (await response.json()).details
}

function join(topic, user) {
  const socket = new Socket(base.replace(/^http/, "ws") + "/socket", { transport: WebSocket })
  sockets.push(socket)
  socket.connect()
  const channel = socket.channel(topic, { user })
  return new Promise((resolve, reject) => {
    channel.join()
      .receive("ok", () => resolve({ socket, channel }))
      .receive("error", (e) => reject(new Error(`join refused: ${JSON.stringify(e)}`)))
      .receive("timeout", () => reject(new Error("join timed out")))
  })
}

/** Sends `count` data envelopes to /ingest; resolves once all are acked. */
function ingest(count) {
  const ws = new WebSocket(base.replace(/^http/, "ws") + "/ingest")
  let acked = 0
  return new Promise((resolve, reject) => {
    ws.on("open", () => {
      for (let i = 0; i < count; i++) {
        ws.send(JSON.stringify({ type: "data", id: `d${i}`, timestamp: Date.now(), payload: { i } }))
      }
    })
    ws.on("message", (data) => {
      const envelope = JSON.parse(data)
      if (envelope.type === "ack" && ++acked === count) {
        ws.close()
        resolve(acked)
      } else if (envelope.type === "nack") {
        reject(new Error(`nacked: ${data}`))
      }
    })
    ws.on("error", reject)
  })
}

// ------------------------------------------------------------ the scenario

async function main() {
  const browser = await devtools(await launch())
  emit({ event: "chromium started" })
  const { targetId } = await browser.send("Target.createTarget", { url: "about:blank" })
  const { sessionId } = await browser.send("Target.attachToTarget", { targetId, flatten: true })
  const send = (method, params) => browser.send(method, params, sessionId)
  const errors = []
  browser.on((message) => {
    if (message.sessionId !== sessionId) return
    if (message.method === "Runtime.exceptionThrown") errors.push(message.params.exceptionDetails.text)
    if (message.method === "Log.entryAdded" && message.params.entry.level === "error"
      // a refused poll is the page's own business; anything else is not
      && !/status of (304|429)/.test(message.params.entry.text)) {
      errors.push(message.params.entry.text)
    }
  })
  await send("Runtime.enable")
  await send("Log.enable")
  await send("Page.enable")
  await send("Emulation.setDeviceMetricsOverride", { width: 1280, height: 1000, deviceScaleFactor: 1, mobile: false })
  const loaded = new Promise((resolve) => browser.on((m) => m.method === "Page.loadEventFired" && resolve()))
  await send("Page.navigate", { url: page })
  await loaded

  const read = async () => {
    const { result } = await send("Runtime.evaluate", {
      returnByValue: true,
      expression: `(() => {
        const t = (id) => document.getElementById(id).textContent
        const n = (id) => Number(t(id).replace(/,/g, ""))
        return {
          renders: Number(document.body.dataset.renders || 0),
          status: t("status"), connections: n("connections"), topics: n("topics"),
          opened: n("opened"), closed: n("closed"), depth: n("depth"),
          utilization: n("utilization"), delivered: n("delivered"),
          problem: document.getElementById("problem").hidden ? null : t("problem"),
          listed: !document.getElementById("topic-table").hidden,
          rows: [...document.querySelectorAll("#topic-table tbody tr")]
            .map((tr) => [...tr.cells].map((td) => td.textContent)),
        }
      })()`,
    })
    return result.value
  }
  const most = { opened: 0, closed: 0 }
  // Until the page shows what /health says (and `extra` holds), within WAIT.
  const agree = async (what, extra = () => true) => {
    const deadline = Date.now() + WAIT
    let shown, truth
    while (Date.now() < deadline) {
      shown = await read()
      most.opened = Math.max(most.opened, shown.opened || 0)
      most.closed = Math.max(most.closed, shown.closed || 0)
      truth = await health()
      if (shown.renders > 0 && shown.connections === truth.connections && shown.topics === truth.topics
        && shown.depth === truth.queue.depth && shown.utilization === Number((100 * truth.queue.utilization).toFixed(1))
        && extra(shown)) {
        log(what, JSON.stringify(shown))
        emit({ event: what })
        return shown
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`${what}: the page shows ${JSON.stringify(shown)}, /health says ${JSON.stringify(truth)}`)
  }
  const screenshot = async (name) => {
    const { data } = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true })
    mkdirSync(out, { recursive: true })
    const path = joinPath(out, name)
    writeFileSync(path, Buffer.from(data, "base64"))
    return path
  }

  const idle = await agree("before any client", (s) => s.status === "serving")
  const before = await health()
  const joined = await Promise.all([
    join("room:lobby", "ann"), join("room:lobby", "bob"), join("room:kitchen", "cy"),
    join("room:lobby", "dee"), join("room:kitchen", "eve"),
  ])
  // Traffic on the lobby: ten room events a second, each broadcast to its members.
  const shouting = setInterval(() => joined[1].channel.push("shout", { body: "hi" }), 100)
  const acked = await ingest(50)
  // A few seconds of figures, so the charts have a shape.
  const busy = await agree("with five clients", (s) =>
    s.connections === before.connections + 5 && s.delivered === idle.delivered + 50
    && most.opened > 0 && s.renders >= idle.renders + 4)
  const topics = busy.listed ? await topicRows(busy) : null
  const shots = [await screenshot("dashboard.png")]
  clearInterval(shouting)
  joined[0].socket.disconnect()
  joined[2].socket.disconnect()
  const after = await agree("after two left", (s) =>
    s.connections === before.connections + 3 && most.closed > 0)
  shots.push(await screenshot("dashboard-after.png"))
  if (errors.length) throw new Error(`the page logged errors: ${errors.join("; ")}`)
  finish(true, { idle, busy, after, acked, most, topics, screenshots: shots })
}

/** Where the page lists topics: members as joined, presence as /presence says. */
async function topicRows(shown) {
  const rows = Object.fromEntries(shown.rows.map(([topic, ...rest]) => [topic, rest]))
  for (const [topic, members] of [["room:lobby", "3"], ["room:kitchen", "2"]]) {
    const row = rows[topic]
    if (!row || row[0] !== members) throw new Error(`${topic}: the page lists ${JSON.stringify(row)}`)
    const presence = await (await fetch(`${base}/presence/${topic}`)).json()
    const keys = Object.keys(presence).length
    if (keys === 0 || !row[2].startsWith(`${keys} keys`)) {
      throw new Error(`${topic}: presence ${row[2]}, /presence has ${keys} keys`)
    }
  }
  if (!(Number(rows["room:lobby"][1]) > 0)) throw new Error(`no messages/s shown on the lobby: ${rows["room:lobby"]}`)
  return rows
}

main().catch((e) => finish(false, { error: String((e && e.stack) || e) }))
