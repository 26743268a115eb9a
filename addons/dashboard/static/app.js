// mikro's dashboard: a client of the Kubernetes API like any other (list, then watch), with
// the cluster's token. Plain ES modules and the DOM, no framework and no build step: the page
// is small, and a maintainer can read and change it with nothing but a browser.
// Every value from the API reaches the page as text (textContent), never as HTML.

const KINDS = {
  deployments: "/apis/apps/v1/deployments",
  statefulsets: "/apis/apps/v1/statefulsets",
  daemonsets: "/apis/apps/v1/daemonsets",
  pods: "/api/v1/pods",
  services: "/api/v1/services",
  ingresses: "/apis/networking.k8s.io/v1/ingresses",
  events: "/api/v1/events",
  namespaces: "/api/v1/namespaces",
};

// A browser opens at most six HTTP/1.1 connections to one host and a watch holds one open:
// the kinds that move every second are watched, the others listed again every few seconds,
// so that logs and actions always find a free connection.
const WATCHED = ["pods", "deployments", "events"];
const POLL_SECONDS = 3;

const state = Object.fromEntries(Object.keys(KINDS).map((k) => [k, new Map()]));
let token = "";
let logsAbort = null;

// -- the API ------------------------------------------------------------------------------

async function api(method, path, body, contentType = "application/json") {
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = contentType;
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : {};
  if (!resp.ok) throw new Error(data.message || `${resp.status} ${resp.statusText}`);
  return data;
}

async function* lines(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, cut);
      buffer = buffer.slice(cut + 1);
    }
  }
  if (buffer) yield buffer;
}

const key = (o) => `${o.metadata.namespace || ""}/${o.metadata.name}`;

// List, then watch from the list's version; start over after a dropped stream or a 410.
async function follow(kind) {
  for (;;) {
    try {
      const list = await api("GET", KINDS[kind]);
      state[kind] = new Map(list.items.map((o) => [key(o), o]));
      redraw();
      const url = `${KINDS[kind]}?watch=true&resourceVersion=${list.metadata.resourceVersion}`;
      const resp = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
      if (!resp.ok) throw new Error(`watch ${kind}: ${resp.status}`);
      setConnection(true);
      for await (const line of lines(resp)) {
        if (!line.trim()) continue;
        const event = JSON.parse(line);
        if (event.type === "ERROR") break;
        if (event.type === "DELETED") state[kind].delete(key(event.object));
        else if (event.type !== "BOOKMARK") state[kind].set(key(event.object), event.object);
        redraw();
      }
    } catch (err) {
      setConnection(false, err.message);
    }
    await new Promise((done) => setTimeout(done, 1000));
  }
}

// -- rendering ----------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(table, headers, rows) {
  const head = el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h))));
  const body = el("tbody", {}, rows.length ? rows : [el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "none"))]);
  // A table that shows the same as before is left as it is: every watch event redraws, and
  // replacing unchanged rows would pull a button away from under the pointer mid-click.
  if (table.innerHTML === head.outerHTML + body.outerHTML) return;
  table.replaceChildren(head, body);
}

function age(stamp) {
  if (!stamp) return "";
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(stamp)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const selectedNamespace = () => document.getElementById("namespace").value;
const inNamespace = (o) => !selectedNamespace() || o.metadata.namespace === selectedNamespace();
const byName = (a, b) => key(a).localeCompare(key(b));
const items = (kind) => [...state[kind].values()].filter(inNamespace).sort(byName);

function podStatus(pod) {
  const status = pod.status || {};
  if (pod.metadata.deletionTimestamp) return { text: "Terminating", cls: "warn" };
  for (const cs of status.containerStatuses || []) {
    const waiting = cs.state && cs.state.waiting;
    if (waiting && waiting.reason && waiting.reason !== "ContainerCreating") return { text: waiting.reason, cls: "bad" };
    const done = cs.state && cs.state.terminated;
    if (done && done.exitCode !== 0) return { text: done.reason || "Error", cls: "bad" };
  }
  const phase = status.phase || "Pending";
  if (phase === "Succeeded") return { text: "Completed", cls: "ok" };
  const ready = (status.conditions || []).some((c) => c.type === "Ready" && c.status === "True");
  return { text: phase, cls: phase === "Running" && ready ? "ok" : "warn" };
}

function lastFailure(pod) {
  for (const cs of (pod.status || {}).containerStatuses || []) {
    const waiting = cs.state && cs.state.waiting;
    if (waiting && waiting.message) return waiting.message;
    const last = cs.lastState && cs.lastState.terminated;
    if (last) return `last run: ${last.reason || "exited"} (exit code ${last.exitCode})`;
  }
  const events = [...state.events.values()]
    .filter((e) => e.type === "Warning" && e.involvedObject && e.involvedObject.name === pod.metadata.name)
    .sort((a, b) => String(a.lastTimestamp).localeCompare(String(b.lastTimestamp)));
  return events.length ? `${events.at(-1).reason}: ${events.at(-1).message}` : "";
}

function workloadRows() {
  const rows = [];
  for (const [kind, label] of [["deployments", "Deployment"], ["statefulsets", "StatefulSet"], ["daemonsets", "DaemonSet"]]) {
    for (const o of items(kind)) {
      const spec = o.spec || {}, status = o.status || {};
      const desired = kind === "daemonsets" ? status.desiredNumberScheduled || 0 : spec.replicas ?? 1;
      const ready = kind === "daemonsets" ? status.numberReady || 0 : status.readyReplicas || 0;
      const updated = kind === "daemonsets" ? status.updatedNumberScheduled || 0 : status.updatedReplicas || 0;
      const rolling = updated < desired || ready < desired || (status.observedGeneration || 0) < (o.metadata.generation || 0);
      const actions = [];
      if (kind !== "daemonsets") {
        const input = el("input", { type: "number", min: "0", value: String(spec.replicas ?? 1), "aria-label": `replicas of ${o.metadata.name}` });
        actions.push(input, el("button", { type: "button", "data-action": "scale", onclick: () => scale(kind, o, input.value) }, "scale"));
      }
      actions.push(el("button", { type: "button", "data-action": "restart", onclick: () => restart(kind, o) }, "restart"));
      rows.push(el("tr", { "data-name": o.metadata.name },
        el("td", {}, label), el("td", {}, o.metadata.namespace), el("td", {}, o.metadata.name),
        el("td", { class: ready >= desired ? "ok" : "warn", "data-ready": "" }, `${ready}/${desired}`),
        el("td", {}, rolling ? "rolling out" : "complete"), el("td", {}, age(o.metadata.creationTimestamp)),
        el("td", {}, actions)));
    }
  }
  return rows;
}

function nodePorts(pod) {
  const ports = [];
  for (const svc of state.services.values()) {
    const selector = (svc.spec || {}).selector;
    if (!selector || svc.metadata.namespace !== pod.metadata.namespace) continue;
    const labels = pod.metadata.labels || {};
    if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
    for (const p of svc.spec.ports || []) if (p.nodePort) ports.push(p.nodePort);
  }
  return ports.join(", ");
}

function podRows() {
  return items("pods").map((pod) => {
    const status = podStatus(pod);
    const statuses = (pod.status || {}).containerStatuses || [];
    const ready = statuses.filter((c) => c.ready).length;
    const restarts = statuses.reduce((n, c) => n + (c.restartCount || 0), 0);
    return el("tr", { "data-name": pod.metadata.name },
      el("td", {}, pod.metadata.namespace), el("td", {}, pod.metadata.name),
      el("td", {}, `${ready}/${(pod.spec.containers || []).length}`),
      el("td", { class: status.cls }, status.text), el("td", {}, String(restarts)),
      el("td", {}, age(pod.metadata.creationTimestamp)), el("td", {}, nodePorts(pod)),
      el("td", { class: "reason" }, lastFailure(pod)),
      el("td", {},
        el("button", { type: "button", "data-action": "logs", onclick: () => showLogs(pod) }, "logs"),
        el("button", { type: "button", "data-action": "delete", onclick: () => deletePod(pod) }, "delete")));
  });
}

function serviceRows() {
  const host = location.hostname;
  const rows = items("services").map((svc) => {
    const spec = svc.spec || {};
    const links = (spec.ports || []).map((p) => p.nodePort
      ? el("a", { href: `http://${host}:${p.nodePort}/`, target: "_blank", rel: "noopener" }, `${p.port}:${p.nodePort}`)
      : `${p.port}/${p.protocol || "TCP"}`);
    return el("tr", {}, el("td", {}, "Service"), el("td", {}, svc.metadata.namespace), el("td", {}, svc.metadata.name),
      el("td", {}, `${spec.type || "ClusterIP"} ${spec.clusterIP || ""}`), el("td", {}, links.flatMap((l, i) => (i ? [" ", l] : [l]))));
  });
  for (const ing of items("ingresses")) {
    const tls = new Set(((ing.spec || {}).tls || []).flatMap((t) => t.hosts || []));
    const links = [];
    for (const rule of (ing.spec || {}).rules || []) {
      const h = rule.host || host;
      for (const path of (rule.http || {}).paths || []) {
        const url = `${tls.has(rule.host) ? "https" : "http"}://${h}${path.path || "/"}`;
        links.push(el("a", { href: url, target: "_blank", rel: "noopener" }, url), " ");
      }
    }
    rows.push(el("tr", {}, el("td", {}, "Ingress"), el("td", {}, ing.metadata.namespace), el("td", {}, ing.metadata.name),
      el("td", {}, (ing.spec || {}).ingressClassName || ""), el("td", {}, links)));
  }
  return rows;
}

function eventRows() {
  return items("events")
    .sort((a, b) => String(b.lastTimestamp || b.eventTime).localeCompare(String(a.lastTimestamp || a.eventTime)))
    .slice(0, 50)
    .map((e) => el("tr", {},
      el("td", {}, age(e.lastTimestamp || e.eventTime)), el("td", { class: e.type === "Warning" ? "warn" : "" }, e.type),
      el("td", {}, e.reason), el("td", {}, `${(e.involvedObject || {}).kind}/${(e.involvedObject || {}).name}`),
      el("td", { class: "reason" }, e.message)));
}

function syncNamespaces() {
  const select = document.getElementById("namespace");
  const wanted = ["", ...[...state.namespaces.values()].map((n) => n.metadata.name).sort()];
  const have = [...select.options].map((o) => o.value);
  if (wanted.join("\n") === have.join("\n")) return;
  const current = select.value;
  select.replaceChildren(...wanted.map((n) => el("option", { value: n }, n || "all namespaces")));
  select.value = wanted.includes(current) ? current : "";
}

let pending = false;
function redraw() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    // Leave a row being edited alone: a redraw would throw away the number being typed.
    const active = document.activeElement;
    if (active && active.tagName === "INPUT" && active.type === "number") { setTimeout(redraw, 500); return; }
    syncNamespaces();
    fill(document.getElementById("workloads"), ["kind", "namespace", "name", "ready", "rollout", "age", ""], workloadRows());
    fill(document.getElementById("pods"), ["namespace", "name", "ready", "status", "restarts", "age", "node ports", "last failure", ""], podRows());
    fill(document.getElementById("services"), ["kind", "namespace", "name", "type", "urls"], serviceRows());
    fill(document.getElementById("events"), ["age", "type", "reason", "object", "message"], eventRows());
  });
}

function setConnection(ok, message = "") {
  const node = document.getElementById("connection");
  node.textContent = ok ? "live" : `reconnecting… ${message}`;
  node.className = ok ? "ok" : "warn";
}

// -- actions ------------------------------------------------------------------------------

function report(err) { setConnection(false, err.message); }

async function scale(kind, o, replicas) {
  const path = `${KINDS[kind].replace(`/${kind}`, "")}/namespaces/${o.metadata.namespace}/${kind}/${o.metadata.name}/scale`;
  await api("PATCH", path, { spec: { replicas: Number(replicas) } }, "application/merge-patch+json").catch(report);
}

async function restart(kind, o) {
  const path = `${KINDS[kind].replace(`/${kind}`, "")}/namespaces/${o.metadata.namespace}/${kind}/${o.metadata.name}`;
  const body = { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } } } };
  await api("PATCH", path, body, "application/strategic-merge-patch+json").catch(report);
}

async function deletePod(pod) {
  if (!confirm(`Delete pod ${pod.metadata.name}?`)) return;
  await api("DELETE", `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`).catch(report);
}

// Docker's RFC 3339 stamps drop trailing zeros of the fraction: pad it so that text order is time order.
function sortable(stamp) {
  const match = /^(.*?)(?:\.(\d+))?Z$/.exec(stamp);
  return match ? `${match[1]}.${(match[2] || "").padEnd(9, "0")}Z` : stamp;
}

async function showLogs(pod) {
  if (logsAbort) logsAbort.abort();
  const abort = (logsAbort = new AbortController());
  const out = document.getElementById("logs");
  document.getElementById("logs-section").hidden = false;
  document.getElementById("logs-pod").textContent = `${pod.metadata.namespace}/${pod.metadata.name}`;
  out.textContent = "";
  const url = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/log?follow=true&tailLines=200&timestamps=true`;
  // Browsers drop open requests when the host's network changes (Docker adds an interface for
  // each new container): follow again, skipping the lines already shown by their timestamps.
  let last = "";
  while (!abort.signal.aborted) {
    try {
      const resp = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, signal: abort.signal });
      if (!resp.ok) throw new Error((await resp.json()).message);
      for await (const line of lines(resp)) {
        const cut = line.indexOf(" ");
        const stamp = cut > 0 ? sortable(line.slice(0, cut)) : "";
        if (stamp && stamp <= last) continue;
        last = stamp || last;
        out.append(document.createTextNode((cut > 0 ? line.slice(cut + 1) : line) + "\n"));
        out.scrollTop = out.scrollHeight;
      }
    } catch (err) {
      if (err.name === "AbortError") return;
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}

// -- start --------------------------------------------------------------------------------

async function login(candidate) {
  token = candidate;
  await api("GET", "/api/v1/namespaces?limit=1");
  sessionStorage.setItem("mikro-token", token);
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
  for (const kind of WATCHED) follow(kind);
  const polled = Object.keys(KINDS).filter((k) => !WATCHED.includes(k));
  const poll = () => Promise.all(polled.map(async (kind) => {
    const list = await api("GET", KINDS[kind]);
    state[kind] = new Map(list.items.map((o) => [key(o), o]));
  })).then(redraw, report);
  poll();
  setInterval(poll, POLL_SECONDS * 1000);
  setInterval(redraw, 5000); // ages move on
}

function start() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) history.replaceState(null, "", location.pathname); // keep the token out of the address bar
  const saved = fromLink || sessionStorage.getItem("mikro-token");
  const form = document.getElementById("login");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    login(document.getElementById("token").value.trim()).catch((err) => {
      document.getElementById("login-error").textContent = `Not accepted: ${err.message}`;
    });
  });
  document.getElementById("namespace").addEventListener("change", redraw);
  document.getElementById("logs-close").addEventListener("click", () => {
    if (logsAbort) logsAbort.abort();
    document.getElementById("logs-section").hidden = true;
  });
  if (saved) login(saved).catch(() => { form.hidden = false; });
  else form.hidden = false;
}

start();
