// The switchboard dashboard: polls <base>/state once a second and shows it.
// No dependencies; every figure is written with textContent (topic and key
// names come from clients).
"use strict";
(() => {
  const STATE = document.body.dataset.state;
  const PERIOD = 1000;
  const TOKEN_KEY = "switchboard-dashboard-token";
  const $ = (id) => document.getElementById(id);
  let etag = null;
  let failures = 0;
  let renders = 0;

  // A token in the URL's fragment (never sent to the server) is kept for the tab.
  const fragment = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fragment) {
    sessionStorage.setItem(TOKEN_KEY, fragment);
    history.replaceState(null, "", location.pathname + location.search);
  }
  let token = sessionStorage.getItem(TOKEN_KEY);

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token-form").hidden = true;
    etag = null;
    poll();
  });

  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }

  async function poll() {
    let wait = PERIOD;
    try {
      const headers = {};
      if (etag) headers["If-None-Match"] = etag;
      if (token) headers["Authorization"] = "Bearer " + token;
      const response = await fetch(STATE, { headers, cache: "no-store" });
      failures = 0;
      if (response.status === 200) {
        etag = response.headers.get("ETag");
        render(await response.json());
        problem(null);
      } else if (response.status === 304) {
        problem(null);
      } else if (response.status === 401) {
        etag = null;
        $("token-form").hidden = false;
        $("token-note").textContent = token ? "that token was refused" : "";
        problem("This hub's figures need its admin token (server.admin_token_env).");
        return; // until a token is given
      } else if (response.status === 429) {
        wait = 1000 * (Number(response.headers.get("Retry-After")) || 1);
        problem("The hub is serving many viewers this second; retrying.");
      } else {
        problem(`The hub answered ${response.status}.`);
      }
    } catch (error) {
      failures += 1;
      wait = Math.min(PERIOD * 2 ** failures, 10000);
      problem("The hub does not answer; retrying.");
      setStatus("unreachable");
    }
    setTimeout(poll, wait);
  }

  const number = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));
  const rate = (r) => (r == null ? "–" : r >= 100 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1));
  const text = (id, value) => { $(id).textContent = value; };

  function setStatus(status) {
    const pill = $("status");
    pill.textContent = status;
    pill.className = "pill " + ({ serving: "ok", connected: "ok", degraded: "warn", connecting: "warn" }[status] || "bad");
  }

  function spark(id, values) {
    const line = $(id).querySelector("polyline");
    const max = Math.max(1, ...values);
    const step = values.length > 1 ? 60 / (values.length - 1) : 0;
    const points = values.map((v, i) => `${(i * step).toFixed(2)},${(19 - (18 * v) / max).toFixed(2)}`);
    line.setAttribute("points", points.join(" "));
  }

  function cell(row, value, numeric) {
    const td = row.insertCell();
    td.textContent = value;
    if (numeric) td.className = "n";
    return td;
  }

  function rows(tbody, items, fill) {
    tbody.replaceChildren();
    for (const item of items) fill(tbody.insertRow(), item);
  }

  function render(state) {
    renders += 1;
    document.body.dataset.snapshot = state.snapshot;
    document.body.dataset.renders = renders;
    setStatus(state.status);
    text("node", state.cluster ? `node ${state.cluster.node_id}` : state.mode === "client" ? "client mode" : "");
    text("updated", "updated " + new Date(state.at).toLocaleTimeString());

    const c = state.connections;
    text("connections", number(c.now));
    text("max-connections", number(c.max));
    text("opened", rate(c.opened_per_s));
    text("closed", rate(c.closed_per_s));
    text("topics", number(state.topics.count));
    const series = state.series;
    spark("chart-connections", series.connections);
    spark("chart-churn", series.opened.map((opened, i) => opened + series.closed[i]));
    spark("chart-topics", series.topics);
    spark("chart-queue", series.utilization);
    spark("chart-sink", series.sink);

    const q = state.queue;
    text("utilization", (100 * q.utilization).toFixed(1));
    text("depth", number(q.depth));
    text("capacity", number(q.capacity));
    $("utilization-bar").style.width = Math.min(100, 100 * q.utilization).toFixed(1) + "%";
    $("utilization-bar").className = q.slow ? "slow" : "";
    text("slow", q.slow ? "slow" : "flowing");
    $("slow").className = "pill " + (q.slow ? "warn" : "ok");
    text("slow-episodes", number(q.slow_episodes));
    text("resumed", number(q.resumed));
    text("in-flight", number(q.in_flight));
    const episodes = $("episodes");
    episodes.replaceChildren();
    const time = (ms) => new Date(ms).toLocaleTimeString();
    for (const e of q.episodes.slice().reverse()) {
      const li = document.createElement("li");
      const began = e.count === 1 ? `slow since ${time(e.seen)}` :
        `${number(e.count)} slow episodes between ${time(e.after)} and ${time(e.seen)}`;
      const end = e.end == null ? "still slow" : "resumed by " + time(e.end);
      li.textContent = `${began}, peak ${(100 * e.peak).toFixed(0)} %, ${end}`;
      episodes.append(li);
    }

    const s = state.sink;
    text("sink-rate", rate(s.per_s));
    text("delivered", number(s.delivered));
    text("retries", number(s.retries));

    const listed = state.topics.rows;
    $("topic-table").hidden = !listed || listed.length === 0;
    $("topics-note").hidden = !!(listed && listed.length);
    text("topics-note", listed ? "No topic has members." :
      `${number(state.topics.count)} topics; this hub does not list them by name.`);
    rows($("topic-table").tBodies[0], listed || [], (row, t) => {
      cell(row, t.topic);
      cell(row, number(t.members), true);
      cell(row, rate(t.messages_per_s), true);
      const p = t.presence;
      const more = p && p.keys > p.names.length ? ", …" : "";
      cell(row, !p ? "–" : p.keys === 0 ? "no one tracked" :
        `${number(p.keys)} keys, ${number(p.metas)} metas: ${p.names.join(", ")}${more}`);
    });

    const drops = state.drops.filter((d) => d.total > 0);
    $("drop-table").hidden = drops.length === 0;
    $("drops-none").hidden = drops.length > 0;
    rows($("drop-table").tBodies[0], drops, (row, d) => {
      cell(row, d.group.replace(/_/g, " "));
      cell(row, d.reason.replace(/_/g, " "));
      cell(row, number(d.total), true);
      cell(row, rate(d.per_s), true);
    });

    const cl = state.cluster;
    $("cluster").hidden = !cl;
    if (cl) {
      text("cluster-node", cl.node_id);
      text("cluster-state", cl.state);
      $("cluster-state").className = "pill " + (cl.state === "connected" ? "ok" : "bad");
      text("cluster-lag", cl.lag_ms.toFixed(1));
      text("cluster-pending", number(cl.pending));
      text("cluster-subscriptions", number(cl.subscriptions));
      text("cluster-published", number(cl.published));
      text("cluster-delivered", number(cl.delivered));
      text("cluster-dropped", number(cl.dropped));
      rows($("node-table").tBodies[0], cl.peers, (row, n) => {
        cell(row, n.node);
        cell(row, n.state);
        cell(row, number(n.last_seen_ms), true);
        cell(row, number(n.connections), true);
      });
      $("nodes-note").hidden = cl.peers_total <= cl.peers.length && cl.peers_total > 0;
      text("nodes-note", cl.peers_total === 0 ? "No other node heard from." :
        `${number(cl.peers_total - cl.peers.length)} more nodes not listed.`);
    }

    const d = state.dashboard;
    text("snapshot", number(state.snapshot));
    text("cost", `${number(d.bodies)} bodies sent, ${number(d.not_modified)} unchanged, ${number(d.busy)} turned away`);
  }

  poll();
})();
