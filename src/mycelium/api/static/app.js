// pymycelium dashboard: polls the node's REST API (same origin) and draws what it reads.
// No framework and no build step. Every string from the node goes into the page as text
// (textContent, SVG attributes), never as markup.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const intParam = (name, min, max, fallback) => {
    const n = Number.parseInt(params.get(name) ?? "", 10);
    return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
  };
  /** Pause between the end of one refresh and the start of the next (never overlapping). */
  const REFRESH_MS = intParam("refresh", 250, 60000, 2000);
  /** A request unanswered this long counts as a lost node. */
  const TIMEOUT_MS = intParam("timeout", 250, 60000, 5000);
  const SLOW_MS = Math.min(1500, TIMEOUT_MS / 2);
  const TRAFFIC_SAMPLES = 150;
  const PEER_SAMPLES = 40;
  const PEERS_PER_PAGE = 20;
  const ROUTES_PER_PAGE = 50;
  const MAX_EVENTS = 200;
  const GRAPH_DOTS = 40;
  const API = "/api/v1";
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  const state = {
    info: null,
    node: null,
    peers: [],
    links: new Map(), // endpoint -> link
    hopToPeer: new Map(), // connectionId -> endpoint
    peerSubnet: new Map(), // endpoint -> subnet the peer itself announces (metric 0)
    routesVia: new Map(), // endpoint -> selected route count
    routes: { selected: [], fallback: [], queried: [] },
    counters: null,
    messages: null,
    traffic: [], // {at, gap} or {at, values}
    peerHistory: new Map(), // endpoint -> {at, rx, tx, rxRates: [], txRates: []}
    lastSelected: null, // subnet -> nextHop
    events: [],
    routeTab: "selected",
    routeFilter: "",
    routePage: 0,
    routeSort: { key: "subnet", dir: 1 },
    peerPage: 0,
    confirmRemove: null, // {endpoint, until}
    conn: "connecting",
    lastOk: 0,
    lostAt: 0,
    error: "",
    latency: 0,
  };

  // --- formatting --------------------------------------------------------------------------
  const nf = new Intl.NumberFormat();
  const fmtInt = (n) => (n === null || n === undefined ? "–" : nf.format(n));
  function fmtBytes(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
  }
  const fmtRate = (n) => (n === null || n === undefined ? "–" : `${fmtBytes(n)}/s`);
  function fmtCount(n) {
    if (n === null || n === undefined) return "–";
    if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
    if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
    return n >= 10 ? String(Math.round(n)) : String(Math.round(n * 10) / 10);
  }
  function fmtDuration(s) {
    if (s === null || s === undefined) return "–";
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min ${s % 60} s`;
    return `${s} s`;
  }
  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

  function endpointText(ep) {
    if (!ep || typeof ep !== "object") return String(ep);
    const addr = ep.addr || {};
    if (addr.socket !== undefined) return `${ep.proto}://${addr.socket}`;
    if (addr.vsock) return `vsock://${addr.vsock.cid}:${addr.vsock.port}`;
    return `${ep.proto}://?`;
  }
  function costClass(cost) {
    if (cost === null || cost === undefined) return "unknown";
    if (cost < 100) return "good";
    if (cost < 400) return "fair";
    return "poor";
  }
  function topicText(b64) {
    try {
      const raw = atob(b64);
      return /^[\x20-\x7e]*$/.test(raw) ? raw : `base64:${b64}`;
    } catch {
      return b64;
    }
  }

  // --- DOM helpers -------------------------------------------------------------------------
  function setText(el, text) {
    const t = String(text);
    if (el.textContent !== t) el.textContent = t;
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  /** Rows keyed by `key`, created once by `build` and refreshed in place by `update`: a row
   * being clicked is never swapped for a new one under the pointer. */
  function syncRows(tbody, items, key, build, update) {
    const old = new Map();
    for (const tr of tbody.children) old.set(tr.dataset.key, tr);
    items.forEach((item, i) => {
      const k = key(item);
      let tr = old.get(k);
      if (tr) old.delete(k);
      else {
        tr = build(item);
        tr.dataset.key = k;
      }
      update(tr, item);
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    for (const tr of old.values()) tr.remove();
  }

  function renderPager(nav, page, total, perPage) {
    nav.replaceChildren();
    if (total <= perPage) return page;
    const pages = Math.ceil(total / perPage);
    page = Math.min(page, pages - 1);
    const first = page * perPage + 1;
    const last = Math.min(total, first + perPage - 1);
    const prev = el("button", { type: "button", class: "small ghost", "data-go": page - 1, text: "‹ Previous" });
    const next = el("button", { type: "button", class: "small ghost", "data-go": page + 1, text: "Next ›" });
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    nav.append(prev, el("span", { class: "range", text: `${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(total)}` }), next);
    return page;
  }
  function onPager(nav, set) {
    nav.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-go]");
      if (b && !b.disabled) {
        set(Number(b.dataset.go));
        render();
      }
    });
  }

  // --- talking to the node -----------------------------------------------------------------
  async function request(method, path, body) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    const init = { method, signal: ctl.signal, cache: "no-store", credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      const r = await fetch(path, init);
      return { status: r.status, ok: r.ok, text: await r.text() };
    } catch (e) {
      if (e.name === "AbortError") throw new Error(`no answer within ${TIMEOUT_MS / 1000} s`);
      throw new Error(`cannot reach the node (${e.message})`);
    } finally {
      clearTimeout(timer);
    }
  }
  async function getJson(path) {
    const r = await request("GET", path);
    if (!r.ok) throw new Error(`${path} answered HTTP ${r.status}`);
    return JSON.parse(r.text);
  }

  async function refresh() {
    const started = performance.now();
    const [info, node, peers, links, selected, fallback, queried, counters, messages] = await Promise.all([
      getJson(`${API}/admin`),
      getJson(`${API}/pymycelium/node`),
      getJson(`${API}/admin/peers`),
      getJson(`${API}/pymycelium/links`),
      getJson(`${API}/admin/routes/selected`),
      getJson(`${API}/admin/routes/fallback`),
      getJson(`${API}/admin/routes/queried`),
      getJson(`${API}/pymycelium/counters`),
      getJson(`${API}/pymycelium/messages`),
    ]);
    state.latency = performance.now() - started;
    absorb({ info, node, peers, links, selected, fallback, queried, counters, messages });
  }

  // --- turning readings into state ---------------------------------------------------------
  function addEvent(kind, text) {
    state.events.unshift({ at: Date.now(), kind, text });
    if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
  }

  function resetHistory() {
    state.traffic = [];
    state.peerHistory.clear();
    state.counters = null;
    state.lastSelected = null;
  }

  function absorb(r) {
    const restarted =
      state.info &&
      state.node &&
      (r.info.nodePubkey !== state.info.nodePubkey || r.node.uptime + 1 < state.node.uptime);
    if (restarted) {
      resetHistory();
      addEvent("restart", `node restarted (${r.info.nodeIp})`);
    }
    const now = performance.now() / 1000;
    state.info = r.info;
    state.node = r.node;
    state.peers = r.peers;
    state.links = new Map(r.links.map((l) => [l.endpoint, l]));
    state.hopToPeer = new Map(r.links.map((l) => [l.connectionId, l.endpoint]));
    state.routes = { selected: r.selected, fallback: r.fallback, queried: r.queried };
    state.messages = r.messages;

    state.peerSubnet = new Map();
    for (const route of [...r.selected, ...r.fallback]) {
      const peer = state.hopToPeer.get(route.nextHop);
      if (peer && route.metric === 0 && !state.peerSubnet.has(peer)) state.peerSubnet.set(peer, route.subnet);
    }
    state.routesVia = new Map();
    for (const route of r.selected) {
      const peer = state.hopToPeer.get(route.nextHop);
      if (peer) state.routesVia.set(peer, (state.routesVia.get(peer) || 0) + 1);
    }

    absorbTraffic(r.counters, now);
    absorbPeers(r.peers, now);
    absorbRouteChanges(r.selected);
  }

  function absorbTraffic(c, now) {
    const prev = state.counters;
    state.counters = c;
    if (!prev) return;
    const dt = c.time - prev.time;
    if (dt <= 0) return;
    const rate = (a, b) => Math.max(0, (a - b) / dt);
    const values = {
      routed: rate(c.packets.sent + c.packets.forwarded, prev.packets.sent + prev.packets.forwarded),
      local: rate(c.packets.local, prev.packets.local),
      dropped: rate(c.packets.dropped, prev.packets.dropped),
      bytesIn: rate(c.bytes.linkIn, prev.bytes.linkIn),
      bytesOut: rate(c.bytes.linkOut, prev.bytes.linkOut),
      bytesRouted: rate(c.bytes.routed, prev.bytes.routed),
      bytesLocal: rate(c.bytes.local, prev.bytes.local),
    };
    state.traffic.push({ at: now, values });
    if (state.traffic.length > TRAFFIC_SAMPLES) state.traffic.splice(0, state.traffic.length - TRAFFIC_SAMPLES);
  }

  function absorbPeers(peers, now) {
    const seen = new Set();
    for (const p of peers) {
      const key = endpointText(p.endpoint);
      seen.add(key);
      let h = state.peerHistory.get(key);
      if (!h) {
        h = { at: now, rx: p.rxBytes, tx: p.txBytes, rxRate: null, txRate: null, rates: [] };
        state.peerHistory.set(key, h);
        continue;
      }
      const dt = now - h.at;
      if (dt <= 0) continue;
      h.rxRate = Math.max(0, (p.rxBytes - h.rx) / dt);
      h.txRate = Math.max(0, (p.txBytes - h.tx) / dt);
      h.rates.push(h.rxRate + h.txRate);
      if (h.rates.length > PEER_SAMPLES) h.rates.shift();
      h.at = now;
      h.rx = p.rxBytes;
      h.tx = p.txBytes;
    }
    for (const key of [...state.peerHistory.keys()]) if (!seen.has(key)) state.peerHistory.delete(key);
  }

  function hopName(nextHop) {
    return state.hopToPeer.get(nextHop) || nextHop;
  }

  function absorbRouteChanges(selected) {
    const current = new Map(selected.map((r) => [r.subnet, r.nextHop]));
    const before = state.lastSelected;
    state.lastSelected = current;
    if (!before) return;
    for (const [subnet, hop] of current) {
      const old = before.get(subnet);
      if (old === undefined) addEvent("added", `${subnet} via ${hopName(hop)}`);
      else if (old !== hop) addEvent("moved", `${subnet} now via ${hopName(hop)}`);
    }
    for (const [subnet, hop] of before) {
      if (!current.has(subnet)) addEvent("lost", `${subnet} (was via ${hopName(hop)})`);
    }
  }

  // --- rendering ---------------------------------------------------------------------------
  function render() {
    renderStatus();
    if (!state.info) return;
    renderNode();
    renderOverview();
    renderTraffic();
    renderGraph();
    renderPeers();
    renderRoutes();
    renderEvents();
    renderMessages();
  }

  function renderStatus() {
    const box = $("status");
    const banner = $("banner");
    box.dataset.state = state.conn;
    document.body.classList.toggle("stale", state.conn === "disconnected" && state.info !== null);
    if (state.conn === "live") setText($("status-text"), `Live · updated ${clock(state.lastOk)}`);
    else if (state.conn === "slow")
      setText($("status-text"), `Slow · last refresh took ${(state.latency / 1000).toFixed(1)} s`);
    else if (state.conn === "disconnected") setText($("status-text"), `Disconnected since ${clock(state.lostAt)}`);
    else setText($("status-text"), "Connecting…");
    if (state.conn === "disconnected") {
      const shown = state.info ? ` Showing what it last reported (${clock(state.lastOk)}).` : "";
      setText(banner, `Lost contact with the node: ${state.error}.${shown} Retrying every ${REFRESH_MS / 1000} s.`);
      banner.hidden = false;
    } else banner.hidden = true;
  }

  function renderNode() {
    const { info, node } = state;
    setText($("node-address"), info.nodeIp);
    setText($("node-subnet"), info.nodeSubnet);
    setText($("node-pubkey"), info.nodePubkey);
    setText($("node-uptime"), fmtDuration(node.uptime));
    setText($("node-started"), `since ${new Date(info.nodeStartTime * 1000).toLocaleString()}`);
    setText($("node-version"), `pymycelium ${node.version} (speaks Mycelium ${node.referenceVersion})`);
    setText($("node-tun"), node.tun.enabled ? `${node.tun.name} (up)` : "none (no TUN device: messages and proxy only)");
    const listen = [`TCP ${node.listen.tcp}`];
    if (node.listen.quic !== null) listen.push(`QUIC ${node.listen.quic}`);
    if (node.privateNetwork) listen.push(`private network “${node.privateNetwork}”`);
    setText($("node-listen"), listen.join(" · "));
    document.title = `Mycelium ${info.nodeIp}`;
    setText($("footer-text"), `pymycelium ${node.version}`);
  }

  function lastTraffic() {
    return state.traffic.length ? state.traffic[state.traffic.length - 1].values : null;
  }

  function renderOverview() {
    const alive = state.peers.filter((p) => p.connectionState === "alive").length;
    setText($("tile-peers"), `${alive} / ${state.peers.length}`);
    setText($("tile-selected"), fmtInt(state.routes.selected.length));
    setText($("tile-fallback"), fmtInt(state.routes.fallback.length));
    setText($("tile-queried"), fmtInt(state.routes.queried.length));
    const t = lastTraffic();
    setText($("tile-in"), t ? fmtRate(t.bytesIn) : "–");
    setText($("tile-out"), t ? fmtRate(t.bytesOut) : "–");
    setText($("tile-routed"), t ? `${fmtCount(t.routed)}/s` : "–");
    setText($("tile-dropped"), t ? `${fmtCount(t.dropped)}/s` : "–");
    const since = Date.now() - 5 * 60 * 1000;
    const churn = state.events.filter((e) => e.at >= since && ["added", "lost", "moved"].includes(e.kind));
    setText($("tile-churn"), fmtInt(churn.length));
    const costs = state.peers
      .map((p) => [endpointText(p.endpoint), (state.links.get(endpointText(p.endpoint)) || {}).linkCost])
      .filter(([, cost]) => typeof cost === "number")
      .sort((a, b) => a[1] - b[1]);
    for (const [id, pick] of [["best", costs[0]], ["worst", costs[costs.length - 1]]]) {
      const value = $(`tile-${id}`);
      setText(value, pick ? fmtInt(pick[1]) : "–");
      value.className = `value cost ${pick ? costClass(pick[1]) : ""}`;
      setText($(`tile-${id}-peer`), pick ? pick[0] : "");
      $(`tile-${id}-peer`).title = pick ? pick[0] : "";
    }
    setText($("tile-inbox"), state.messages ? fmtInt(state.messages.inbox) : "–");
  }

  const PACKET_SERIES = [
    ["routed", "sent and forwarded", "s1", fmtCount],
    ["local", "for this node", "s2", fmtCount],
    ["dropped", "dropped", "s3", fmtCount],
  ];
  const BYTE_SERIES = [
    ["bytesIn", "links in", "s1", fmtRate],
    ["bytesOut", "links out", "s4", fmtRate],
    ["bytesLocal", "data for this node", "s2", fmtRate],
  ];

  function renderTraffic() {
    const span = (TRAFFIC_SAMPLES * REFRESH_MS) / 1000;
    setText($("traffic-window"), `· last ${fmtDuration(span)}, from the node's counters`);
    drawChart($("chart-packets"), $("legend-packets"), PACKET_SERIES, span, (v) => `${fmtCount(v)}/s`);
    drawChart($("chart-bytes"), $("legend-bytes"), BYTE_SERIES, span, fmtRate);
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart(box, legend, series, span, fmtAxis) {
    const width = Math.max(200, Math.round(box.clientWidth || box.getBoundingClientRect().width || 600));
    const height = 140;
    const left = 4;
    const top = 16;
    const bottom = height - 16;
    box.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const now = performance.now() / 1000;
    const samples = state.traffic.filter((s) => s.at >= now - span);
    let peak = 0;
    for (const s of samples) for (const [key] of series) peak = Math.max(peak, s.values[key]);
    const max = niceMax(peak);
    const x = (at) => left + ((at - (now - span)) / span) * (width - left);
    const y = (v) => bottom - (v / max) * (bottom - top);
    const children = [
      svg("line", { class: "grid", x1: left, x2: width, y1: top, y2: top }),
      svg("line", { class: "grid", x1: left, x2: width, y1: (top + bottom) / 2, y2: (top + bottom) / 2 }),
      svg("line", { class: "grid", x1: left, x2: width, y1: bottom, y2: bottom }),
      svg("text", { class: "axis", x: left + 2, y: top - 4, text: fmtAxis(max) }),
      svg("text", { class: "axis", x: left + 2, y: height - 3, text: `−${fmtDuration(span)}` }),
      svg("text", { class: "axis", x: width - 2, y: height - 3, "text-anchor": "end", text: "now" }),
    ];
    for (const [key, , cls] of series) {
      let d = "";
      let previous = null;
      for (const s of samples) {
        // A missing sample (the node was unreachable) breaks the line.
        const join = previous !== null && s.at - previous < (3 * REFRESH_MS + TIMEOUT_MS) / 1000;
        d += `${join ? "L" : "M"}${x(s.at).toFixed(1)} ${y(s.values[key]).toFixed(1)}`;
        previous = s.at;
      }
      if (d) children.push(svg("path", { class: cls, d, "data-series": key }));
    }
    box.replaceChildren(...children);
    const last = samples.length ? samples[samples.length - 1].values : null;
    legend.replaceChildren(
      ...series.map(([key, label, cls, fmt]) =>
        el("li", { class: cls }, label, el("span", { class: "v", text: last ? fmt(last[key]) + (fmt === fmtCount ? "/s" : "") : "–" })),
      ),
    );
  }

  // The neighbourhood: this node in the middle, its peers on a ring, and beyond each peer the
  // destinations its selected routes lead to: a dot each while they are few (GRAPH_DOTS), else
  // one bubble per peer sized by their number.
  function renderGraph() {
    const box = $("graph");
    const peers = sortedPeers();
    const n = peers.length;
    // Up to 12 peers are named, outside their destinations; more are drawn on larger rings.
    // Drawn small on a phone: larger, shorter names (the full one is in the peers table).
    const labelPeers = n <= 12;
    const narrow = box.getBoundingClientRect().width < 480;
    box.classList.toggle("narrow", narrow);
    const longest = narrow ? 16 : 22;
    // The picture spans ±300 by ±185: the outer ring plus the largest bubble (16) fits, and
    // names of at most `longest` characters beside it.
    const ring = labelPeers ? (narrow ? 88 : 100) : 112;
    const outer = labelPeers ? (narrow ? 128 : 148) : 166;
    const r = n > 24 ? 5 : n > 12 ? 7 : 9;
    const byPeer = new Map(peers.map((p) => [endpointText(p.endpoint), []]));
    let unknown = 0;
    for (const route of state.routes.selected) {
      const peer = state.hopToPeer.get(route.nextHop);
      if (peer === undefined || !byPeer.has(peer)) unknown += 1;
      else if (route.metric !== 0 || state.peerSubnet.get(peer) !== route.subnet) byPeer.get(peer).push(route);
    }
    const total = [...byPeer.values()].reduce((a, l) => a + l.length, 0);
    const busiest = Math.max(1, ...[...byPeer.values()].map((l) => l.length));
    const dotted = total <= GRAPH_DOTS;
    const edges = [];
    const spokes = [];
    const nodes = [];
    const leaves = [];
    peers.forEach((p, i) => {
      const key = endpointText(p.endpoint);
      const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, n);
      const px = ring * Math.cos(angle);
      const py = ring * Math.sin(angle);
      const link = state.links.get(key);
      const alive = p.connectionState === "alive";
      const cost = link ? link.linkCost : null;
      const rate = (state.peerHistory.get(key) || {}).rxRate || 0;
      const width = 1.5 + Math.min(2.5, Math.log10(1 + rate) / 2);
      edges.push(
        svg("line", {
          class: `edge ${alive ? costClass(cost) : "down"}`,
          x1: 0, y1: 0, x2: px.toFixed(1), y2: py.toFixed(1),
          "stroke-width": width.toFixed(1),
        }),
      );
      const routes = byPeer.get(key);
      const subnet = state.peerSubnet.get(key);
      const title = `${key}\n${p.connectionState}${cost !== null && cost !== undefined ? ` · link cost ${cost}` : ""}` +
        `${subnet ? `\nsubnet ${subnet}` : ""}\n${state.routesVia.get(key) || 0} selected routes`;
      const g = svg("g", { class: `peer ${p.connectionState}`, "data-endpoint": key, tabindex: "0" },
        svg("title", { text: title }),
        svg("circle", { cx: px.toFixed(1), cy: py.toFixed(1), r }));
      if (labelPeers) {
        const label = key.replace(/^[a-z]+:\/\//, "").replace(/:9651$/, ""); // the usual port
        const at = routes.length ? outer + 8 : ring + r + 4;
        g.append(radialLabel(angle, at, label.length > longest ? `${label.slice(0, longest - 1)}…` : label));
      }
      nodes.push(g);
      if (!routes.length) return;
      const sector = (2 * Math.PI) / Math.max(1, n);
      if (dotted) {
        const spread = Math.min(sector * 0.8, (routes.length - 1) * 0.12);
        routes.forEach((route, j) => {
          const a = angle + (routes.length === 1 ? 0 : -spread / 2 + (spread * j) / (routes.length - 1));
          const dx = (outer * Math.cos(a)).toFixed(1);
          const dy = (outer * Math.sin(a)).toFixed(1);
          spokes.push(svg("line", { class: "spoke", x1: px.toFixed(1), y1: py.toFixed(1), x2: dx, y2: dy }));
          leaves.push(svg("g", { class: "dest", "data-subnet": route.subnet },
            svg("title", { text: `${route.subnet}\nvia ${key} · metric ${route.metric}` }),
            svg("circle", { cx: dx, cy: dy, r: 4 })));
        });
        return;
      }
      // Too many to draw one by one: a bubble per peer, its area counting the destinations.
      const biggest = Math.max(4, Math.min(16, (outer * sector) / 2 - 1.5));
      const radius = Math.max(3.5, biggest * Math.sqrt(routes.length / busiest));
      const bx = (outer * Math.cos(angle)).toFixed(1);
      const by = (outer * Math.sin(angle)).toFixed(1);
      spokes.push(svg("line", { class: "spoke", x1: px.toFixed(1), y1: py.toFixed(1), x2: bx, y2: by }));
      const bubble = svg("g", { class: "dest group", "data-endpoint": key, "data-count": routes.length },
        svg("title", { text: `${routes.length} destinations via ${key}` }),
        svg("circle", { cx: bx, cy: by, r: radius.toFixed(1) }));
      if (radius >= 7) {
        bubble.append(svg("text", { x: bx, y: (Number(by) + 3).toFixed(1), "text-anchor": "middle", text: fmtCount(routes.length) }));
      }
      leaves.push(bubble);
    });
    const me = svg("g", { class: "me" },
      svg("title", { text: `this node\n${state.info.nodeIp}` }),
      svg("circle", { cx: 0, cy: 0, r: 20 }),
      svg("text", { x: 0, y: 4, "text-anchor": "middle", text: "me" }));
    box.replaceChildren(...spokes, ...edges, ...leaves, ...nodes, me);
    const notes = [];
    if (!n) notes.push("No peers: this node is alone.");
    if (unknown) notes.push(`${unknown} routes through a hop that is not in the peer table.`);
    if (n) notes.push("Select a peer to list the routes through it.");
    setText($("graph-note"), notes.join(" "));
  }

  /** Text at (angle, radius), anchored away from the centre. */
  function radialLabel(angle, radius, text) {
    const cos = Math.cos(angle);
    const sin = Math.sin(angle);
    const anchor = Math.abs(cos) < 0.25 ? "middle" : cos > 0 ? "start" : "end";
    const dy = sin > 0.25 ? 9 : sin < -0.25 ? -2 : 3;
    return svg("text", {
      x: (radius * cos).toFixed(1),
      y: (radius * sin + dy).toFixed(1),
      "text-anchor": anchor,
      text,
    });
  }

  const STATE_ORDER = { alive: 0, connecting: 1, dead: 2 };
  function sortedPeers() {
    return [...state.peers].sort(
      (a, b) =>
        (STATE_ORDER[a.connectionState] ?? 3) - (STATE_ORDER[b.connectionState] ?? 3) ||
        endpointText(a.endpoint).localeCompare(endpointText(b.endpoint)),
    );
  }

  function sparkPath(values, w, h) {
    if (values.length < 2) return "";
    const max = Math.max(...values, 1);
    return values
      .map((v, i) => `${i ? "L" : "M"}${((i / (PEER_SAMPLES - 1)) * w).toFixed(1)} ${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`)
      .join("");
  }

  function buildPeerRow() {
    const tr = el("tr");
    const cells = ["", "endpoint mono", "opt", "opt mono", "num", "num", "num", "opt", "num opt", "opt", ""];
    const labels = { 4: "Link cost", 5: "Received", 6: "Sent" };
    cells.forEach((c, i) => tr.append(el("td", labels[i] ? { class: c, "data-label": labels[i] } : { class: c })));
    tr.children[0].append(el("span", { class: "state" }));
    const spark = svg("svg", { class: "spark", viewBox: "0 0 90 22", "aria-hidden": "true" }, svg("path", { class: "s1" }));
    tr.children[7].append(spark);
    tr.children[10].append(el("button", { type: "button", class: "small ghost", "data-remove": "" }));
    return tr;
  }

  function updatePeerRow(tr, p) {
    const key = endpointText(p.endpoint);
    const td = tr.children;
    const h = state.peerHistory.get(key) || {};
    const link = state.links.get(key);
    tr.dataset.endpoint = key;
    tr.dataset.state = p.connectionState;
    const dot = td[0].firstChild;
    dot.className = `state ${p.connectionState}`;
    setText(dot, p.connectionState);
    setText(td[1], key);
    td[1].title = link ? link.connectionId : key;
    setText(td[2], p.type);
    setText(td[3], state.peerSubnet.get(key) || "–");
    const cost = link ? link.linkCost : null;
    setText(td[4], cost === null || cost === undefined ? "–" : fmtInt(cost));
    td[4].className = `num cost ${costClass(cost)}`;
    td[5].replaceChildren(fmtBytes(p.rxBytes), el("span", { class: "sub", text: fmtRate(h.rxRate) }));
    td[6].replaceChildren(fmtBytes(p.txBytes), el("span", { class: "sub", text: fmtRate(h.txRate) }));
    tr.querySelector(".spark path").setAttribute("d", sparkPath(h.rates || [], 90, 22));
    setText(td[8], fmtInt(state.routesVia.get(key) || 0));
    const since = p.connectionState === "alive" && p.lastConnected !== null ? `${fmtDuration(p.lastConnected)} ago` :
      p.lastConnected !== null ? `last ${fmtDuration(p.lastConnected)} ago` : "never";
    setText(td[9], since);
    const button = td[10].firstChild;
    const confirming = state.confirmRemove && state.confirmRemove.endpoint === key && state.confirmRemove.until > Date.now();
    button.dataset.remove = key;
    setText(button, confirming ? "Confirm removal" : "Remove");
    button.className = confirming ? "small danger" : "small ghost";
    button.title = confirming ? `Remove ${key} from this node` : `Remove ${key}`;
  }

  function renderPeers() {
    const peers = sortedPeers();
    setText($("peers-count"), `${peers.filter((p) => p.connectionState === "alive").length} alive of ${peers.length}`);
    state.peerPage = renderPager($("peers-pager"), state.peerPage, peers.length, PEERS_PER_PAGE);
    const page = peers.slice(state.peerPage * PEERS_PER_PAGE, (state.peerPage + 1) * PEERS_PER_PAGE);
    syncRows($("peers-table").tBodies[0], page, (p) => endpointText(p.endpoint), buildPeerRow, updatePeerRow);
    $("peers-empty").hidden = peers.length > 0;
  }

  const ROUTE_COLUMNS = {
    selected: [["subnet", "Subnet"], ["nextHop", "Next hop"], ["metric", "Metric", "num"], ["seqno", "Seqno", "num"]],
    fallback: [["subnet", "Subnet"], ["nextHop", "Next hop"], ["metric", "Metric", "num"], ["seqno", "Seqno", "num"]],
    queried: [["subnet", "Subnet"], ["expiration", "Expires in (s)", "num"]],
  };

  function routeMatches(route, needle) {
    if (!needle) return true;
    const hay = `${route.subnet} ${route.nextHop ?? ""} ${route.nextHop ? hopName(route.nextHop) : ""} ${route.metric ?? ""}`;
    return hay.toLowerCase().includes(needle);
  }
  /** An IPv6 subnet or address as 32 hex digits, which sort as the addresses do. */
  function ipKey(text) {
    const address = String(text).split("/")[0];
    const [head, tail] = address.includes("::") ? address.split("::") : [address, null];
    const left = head ? head.split(":") : [];
    const right = tail ? tail.split(":") : [];
    const groups = tail === null ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
    return groups.map((g) => g.padStart(4, "0")).join("");
  }
  const numeric = (v) => (v === "infinite" ? Infinity : typeof v === "number" ? v : Number.NaN);
  const collator = new Intl.Collator(undefined, { numeric: true });
  /** Code-unit order: for ipKey's equal-length hex, the addresses' order. */
  const plainCompare = (a, b) => (a === b ? 0 : a < b ? -1 : 1);
  function compareValues(a, b) {
    const na = numeric(a);
    const nb = numeric(b);
    if (!Number.isNaN(na) && !Number.isNaN(nb)) return na === nb ? 0 : na < nb ? -1 : 1;
    return collator.compare(String(a), String(b));
  }

  function sortValue(route, key) {
    if (key === "subnet") return ipKey(route.subnet);
    if (key === "nextHop") return hopName(route.nextHop);
    if (key === "expiration") return Number(route.expiration);
    return route[key];
  }

  function renderRoutes() {
    const tab = state.routeTab;
    for (const b of document.querySelectorAll(".tabs button")) {
      b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    }
    for (const name of ["selected", "fallback", "queried"]) setText($(`count-${name}`), fmtInt(state.routes[name].length));
    const columns = ROUTE_COLUMNS[tab];
    const head = $("routes-table").tHead.rows[0];
    if (head.dataset.tab !== tab) {
      head.dataset.tab = tab;
      head.replaceChildren(
        ...columns.map(([key, label, cls]) => el("th", { class: `sortable ${cls || ""}`, "data-sort": key, text: label })),
      );
    }
    for (const th of head.children) {
      th.setAttribute(
        "aria-sort",
        th.dataset.sort === state.routeSort.key ? (state.routeSort.dir > 0 ? "ascending" : "descending") : "none",
      );
    }
    const needle = state.routeFilter.trim().toLowerCase();
    const { key, dir } = state.routeSort;
    const rows = state.routes[tab]
      .filter((r) => routeMatches(r, needle))
      .map((r) => [sortValue(r, key), r])
      .sort((a, b) => dir * (key === "subnet" ? plainCompare(a[0], b[0]) : compareValues(a[0], b[0])))
      .map(([, r]) => r);
    state.routePage = renderPager($("routes-pager"), state.routePage, rows.length, ROUTES_PER_PAGE);
    const page = rows.slice(state.routePage * ROUTES_PER_PAGE, (state.routePage + 1) * ROUTES_PER_PAGE);
    const tbody = $("routes-table").tBodies[0];
    if (tbody.dataset.tab !== tab) {
      tbody.replaceChildren();
      tbody.dataset.tab = tab;
    }
    syncRows(
      tbody,
      page,
      (r) => r.subnet,
      () => {
        const tr = el("tr");
        columns.forEach(([k, , cls]) => tr.append(el("td", { class: `${cls || ""} ${k === "nextHop" ? "hop mono" : k === "subnet" ? "mono" : ""}` })));
        return tr;
      },
      (tr, r) => {
        tr.dataset.subnet = r.subnet;
        columns.forEach(([k], i) => {
          const td = tr.children[i];
          if (k === "nextHop") {
            setText(td, hopName(r.nextHop));
            td.title = r.nextHop;
          } else setText(td, typeof r[k] === "number" ? fmtInt(r[k]) : r[k]);
        });
      },
    );
    const empty = $("routes-empty");
    empty.hidden = rows.length > 0;
    setText(empty, state.routes[tab].length ? `No ${tab} route matches “${state.routeFilter.trim()}”.` : `No ${tab} routes.`);
  }

  function renderEvents() {
    const list = $("route-events");
    list.replaceChildren(
      ...state.events.map((e) =>
        el("li", { class: e.kind }, el("time", { text: clock(e.at) }), el("span", { class: "tag", text: e.kind }), e.text),
      ),
    );
    $("events-empty").hidden = state.events.length > 0;
  }

  function renderMessages() {
    const m = state.messages;
    const c = m.counters || {};
    setText($("msg-inbox"), fmtInt(m.inbox));
    setText($("msg-sent"), fmtInt(c.sent ?? 0));
    setText($("msg-received"), fmtInt(c.received ?? 0));
    setText($("msg-refused"), fmtInt((c.rejected_by_topic ?? 0) + (c.rejected_too_large ?? 0) + (c.inbox_dropped ?? 0)));
    setText($("msg-default"), m.acceptByDefault ? "Topics not listed below are accepted from anyone." : "Only the topics listed below are accepted.");
    syncRows(
      $("topics-table").tBodies[0],
      m.topics,
      (t) => t.topic,
      () => el("tr", {}, el("td", { class: "mono" }), el("td", { class: "num" }), el("td", { class: "mono" })),
      (tr, t) => {
        setText(tr.children[0], topicText(t.topic));
        setText(tr.children[1], t.sources ? fmtInt(t.sources) : "nobody");
        setText(tr.children[2], t.forwardSocket || "inbox");
      },
    );
    $("topics-empty").hidden = m.topics.length > 0;
  }

  // --- actions -----------------------------------------------------------------------------
  function feedback(node, text, error) {
    setText(node, text);
    node.classList.toggle("error", Boolean(error));
  }

  async function addPeer(event) {
    event.preventDefault();
    const input = $("peer-endpoint");
    const button = $("add-peer-button");
    const endpoint = input.value.trim();
    if (!endpoint) return;
    button.disabled = true;
    feedback($("peer-feedback"), `Adding ${endpoint}…`);
    try {
      const r = await request("POST", `${API}/admin/peers`, { endpoint });
      if (r.ok) {
        feedback($("peer-feedback"), `Added ${endpoint}.`);
        input.value = "";
        wakeUp();
      } else {
        const why = r.status === 409 ? "this node already has that peer" : r.text || `HTTP ${r.status}`;
        feedback($("peer-feedback"), `Not added: ${why}`, true);
      }
    } catch (e) {
      feedback($("peer-feedback"), `Not added: ${e.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  async function removePeer(endpoint) {
    try {
      const r = await request("DELETE", `${API}/admin/peers/${encodeURIComponent(endpoint)}`);
      if (r.ok) feedback($("peer-feedback"), `Removed ${endpoint}.`);
      else feedback($("peer-feedback"), `Not removed: ${r.text || `HTTP ${r.status}`}`, true);
    } catch (e) {
      feedback($("peer-feedback"), `Not removed: ${e.message}`, true);
    }
    wakeUp();
  }

  function onPeersClick(event) {
    const button = event.target.closest("button[data-remove]");
    if (!button) return;
    const endpoint = button.dataset.remove;
    const c = state.confirmRemove;
    if (c && c.endpoint === endpoint && c.until > Date.now()) {
      state.confirmRemove = null;
      button.disabled = true;
      removePeer(endpoint);
    } else {
      state.confirmRemove = { endpoint, until: Date.now() + 4000 };
      setTimeout(() => renderPeers(), 4100);
    }
    renderPeers();
  }

  async function copyAddress() {
    const text = state.info ? state.info.nodeIp : "";
    if (!text) return;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      // Not a secure context, or no permission: the old way still works on a user's click.
      const area = el("textarea", { class: "visually-hidden" });
      area.value = text;
      document.body.append(area);
      area.select();
      ok = document.execCommand("copy");
      area.remove();
    }
    feedback($("copy-feedback"), ok ? "Copied" : "Copy failed: select the address instead", !ok);
    setTimeout(() => feedback($("copy-feedback"), ""), 2500);
  }

  function showRoutesVia(endpoint) {
    state.routeTab = "selected";
    state.routeFilter = endpoint;
    state.routePage = 0;
    $("route-filter").value = endpoint;
    render();
    $("routes-card").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function wire() {
    $("add-peer").addEventListener("submit", addPeer);
    $("peers-table").addEventListener("click", onPeersClick);
    $("copy-address").addEventListener("click", copyAddress);
    $("route-filter").addEventListener("input", (e) => {
      state.routeFilter = e.target.value;
      state.routePage = 0;
      render();
    });
    for (const b of document.querySelectorAll(".tabs button")) {
      b.addEventListener("click", () => {
        state.routeTab = b.dataset.tab;
        state.routePage = 0;
        state.routeSort = { key: "subnet", dir: 1 };
        render();
      });
    }
    $("routes-table").tHead.addEventListener("click", (e) => {
      const th = e.target.closest("th[data-sort]");
      if (!th) return;
      const key = th.dataset.sort;
      state.routeSort = { key, dir: state.routeSort.key === key ? -state.routeSort.dir : 1 };
      state.routePage = 0;
      render();
    });
    const graph = $("graph");
    const pick = (e) => {
      const g = e.target.closest(".peer, .dest.group");
      if (g) showRoutesVia(g.dataset.endpoint);
    };
    graph.addEventListener("click", pick);
    graph.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") pick(e);
    });
    onPager($("peers-pager"), (p) => (state.peerPage = p));
    onPager($("routes-pager"), (p) => (state.routePage = p));
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(render, 150);
    });
  }

  // --- the refresh loop --------------------------------------------------------------------
  let wake = null;
  function wakeUp() {
    if (wake) wake();
  }
  function pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async function loop() {
    for (;;) {
      try {
        await refresh();
        state.lastOk = Date.now();
        state.conn = state.latency > SLOW_MS ? "slow" : "live";
      } catch (e) {
        if (state.conn !== "disconnected") {
          state.lostAt = Date.now();
          if (state.info) addEvent("offline", `lost contact with the node (${e.message})`);
        }
        state.conn = "disconnected";
        state.error = e.message;
        state.counters = null; // the next reading starts a new line, not a rate across the gap
      }
      try {
        // The latest render's duration, in the browser's performance tools (only the latest
        // is kept: a page left open for days must not collect one entry per refresh).
        const mark = performance.mark("dashboard-render-start");
        render();
        performance.clearMeasures("dashboard-render");
        performance.measure("dashboard-render", mark.name);
        performance.clearMarks(mark.name);
      } catch (e) {
        console.error("dashboard render failed", e);
      }
      // A node slow to answer (busy, or huge tables) is asked less often: at most a quarter of
      // the time is spent waiting for it.
      await pause(state.conn === "disconnected" ? REFRESH_MS : Math.min(30000, Math.max(REFRESH_MS, 3 * state.latency)));
      wake = null;
    }
  }

  wire();
  loop();
})();
