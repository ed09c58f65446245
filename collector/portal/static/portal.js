// Logbot portal: a small single page over the fleet API (/api/v1), no framework, no CDN.
// The session token lives in sessionStorage; every DOM text goes through textContent.
// Dates and numbers go through Fmt (format.js), charts through Charts (charts.js, uPlot).
"use strict";

const API = "/api/v1";
// nav counts navigations: a page whose data arrives after the user moved on is not drawn.
const state = { token: sessionStorage.getItem("lb_token"), me: null, account: null, flash: null, nav: 0 };

// ---------- helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The status line belongs to the page it was said on: route() clears it on the next
// page unless it was said with `keep` (a message about the navigation itself).
function say(text, error, keep) {
  const s = document.getElementById("status");
  s.textContent = text || "";
  s.className = error ? "error" : "";
  state.flash = keep ? text : null;
}

async function api(method, path, body) {
  const nav = state.nav;
  const headers = { "Accept": "application/json" };
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401 && path !== "/auth/login") { signOut(); throw new Error("Please sign in again."); }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const d = data && data.detail;
    const err = new Error(typeof d === "string" ? d : Array.isArray(d) ? d.map((e) => e.msg).join("; ") : "Request failed (" + r.status + ")");
    err.status = r.status;
    throw err;
  }
  if (method === "GET" && nav !== state.nav) throw Object.assign(new Error("stale page"), { stale: true });
  return data;
}

const STATE_LABEL = { online: "Online", offline: "Offline", needs_attention: "Needs attention", empty: "No devices", unknown: "No data" };

function badge(s) {
  return h("span", { class: "badge state-" + s }, STATE_LABEL[s] || String(s).replaceAll("_", " "));
}

const when = (iso) => Fmt.dateTime(iso);
const NUMERIC = /Logbit|Cost|Price|Tax|Total|Credits|Qty|Quantity|CPU|Memory|Disk|Temperature|Outbox|Signal|Minutes|Licences|Rooms|Spares|Amount/;

function table(headers, rows, caption) {
  return h("table", {},
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", class: NUMERIC.test(x) ? "num" : null }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: NUMERIC.test(headers[i]) ? "num" : null }, c))))));
}

function formOf(fields, submitLabel, onSubmit, inline) {
  const inputs = {};
  const form = h("form", { class: inline ? "inline" : null, onsubmit: async (e) => {
    e.preventDefault();
    const values = {};
    for (const [k, el] of Object.entries(inputs)) values[k] = el.type === "number" ? Number(el.value) : el.value;
    const btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    try { await onSubmit(values); } catch (err) { if (!err.stale) say(err.message, true); } finally { btn.disabled = false; }
  } });
  for (const f of fields) {
    let el;
    if (f.options) el = h("select", { name: f.name }, f.options.map(([v, t]) => h("option", { value: v }, t)));
    else if (f.multiline) el = h("textarea", { name: f.name, rows: 3 });
    else el = h("input", { name: f.name, type: f.type || "text", required: f.optional ? null : true, min: f.min, step: f.step, value: f.value, autocomplete: f.autocomplete || "off" });
    inputs[f.name] = el;
    form.append(h("label", {}, f.label, el));
  }
  form.append(h("button", { type: "submit" }, submitLabel));
  return form;
}

function page(title, ...content) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", {}, title), ...content.flat().filter((c) => c !== null && c !== undefined));
  document.title = title + " · Logbot portal";
  main.focus();
}

function account() { return (state.me && state.me.accounts.find((a) => a.id === state.account)) || {}; }
function canWrite() { return state.me && (state.me.is_operator || account().role === "admin"); }
function muted(text) { return h("p", { class: "muted" }, text); }

// ---------- sign-in and invitations ----------

// Sign-out revokes the session token on the server first, so a copied token dies too.
async function signOutEverywhere() {
  const token = state.token;
  if (token) {
    try {
      await fetch(API + "/auth/logout", { method: "POST", headers: { "Authorization": "Bearer " + token } });
    } catch (e) { /* offline: the token still expires within 12 hours */ }
  }
  signOut();
}

function signOut() {
  state.token = null; state.me = null;
  sessionStorage.removeItem("lb_token");
  document.getElementById("nav").hidden = true;
  location.hash = "#signin";
}

function viewSignIn() {
  page("Sign in",
    formOf([
      { name: "email", label: "E-mail", type: "email", autocomplete: "username" },
      { name: "password", label: "Password", type: "password", autocomplete: "current-password" },
    ], "Sign in", async (v) => {
      const t = await api("POST", "/auth/login", v);
      state.token = t.token; sessionStorage.setItem("lb_token", t.token);
      say("Signed in.", false, true);
      await loadMe();
      location.hash = "#fleet";
    }),
    h("h2", {}, "Single sign-on"),
    h("p", {}, "If your organization signs in with its own identity provider, give its Logbot account id."),
    formOf([{ name: "account", label: "Account id", autocomplete: "organization" }], "Continue with single sign-on", async (v) => {
      // A navigation, not a form post: the provider is another origin (CSP form-action 'self').
      location.assign(`${API}/sso/${encodeURIComponent(v.account.trim())}/start`);
    }));
}

// The collector's SSO callback comes back here with a session token (or a refusal) in the fragment.
async function finishSso(fragment) {
  const p = new URLSearchParams(fragment);
  history.replaceState(null, "", location.pathname + "#fleet");
  if (p.has("sso-error")) { viewSignIn(); say("Single sign-on refused: " + p.get("sso-error"), true, true); return; }
  state.token = p.get("sso"); sessionStorage.setItem("lb_token", state.token);
  if (p.get("account")) sessionStorage.setItem("lb_account", p.get("account"));
  say("Signed in with single sign-on.", false, true);
  await loadMe();
  route();
}

function viewAccept(token) {
  page("Welcome to Logbot",
    h("p", {}, "Accept your invitation: enter the e-mail address it was sent to and choose a password."),
    formOf([
      { name: "email", label: "E-mail", type: "email" },
      { name: "name", label: "Your name", optional: true },
      { name: "password", label: "Password (8 characters or more)", type: "password", autocomplete: "new-password" },
    ], "Get started", async (v) => {
      const t = await api("POST", "/invitations/accept", { token, ...v });
      state.token = t.token; sessionStorage.setItem("lb_token", t.token);
      await loadMe();
      location.hash = "#fleet";
    }));
}

async function selectAccount(id) {
  state.account = id;
  sessionStorage.setItem("lb_account", id || "");
  document.getElementById("account").value = id || "";
  try { Fmt.setZone((await api("GET", `/accounts/${id}/timezone`)).timezone); } catch (e) { Fmt.setZone("UTC"); }
  const who = document.getElementById("who");
  who.textContent = `${state.me.email} · ${state.me.is_operator ? "operator" : account().role || ""} · times in ${Fmt.zone()}`;
}

async function loadMe() {
  state.me = await api("GET", "/me");
  const sel = document.getElementById("account");
  sel.replaceChildren(...state.me.accounts.map((a) => h("option", { value: a.id }, `${a.name} (${a.role})`)));
  const saved = sessionStorage.getItem("lb_account");
  // Default to a top-most customer account in scope (its subsidiaries come after it).
  const ids = new Set(state.me.accounts.map((a) => a.id));
  const top = state.me.accounts.find((a) => a.kind === "customer" && !ids.has(a.parent_id)) || state.me.accounts[0] || {};
  document.getElementById("nav-operator").hidden = !state.me.is_operator;
  document.getElementById("nav").hidden = false;
  await selectAccount(ids.has(saved) ? saved : top.id);
}

// ---------- fleet overview ----------

function peripheralText(p) { return `${p.model} ${p.serial}`.trim(); }

function timelineSummary(room, segments) {
  const total = {};
  for (const s of segments) total[s.state] = (total[s.state] || 0) + (Date.parse(s.end) - Date.parse(s.start)) / 1000;
  const parts = Object.entries(total).filter(([, sec]) => sec > 0).map(([st, sec]) => `${(STATE_LABEL[st] || st).toLowerCase()} ${Fmt.duration(sec)}`);
  return `${room}, last 7 days: ${parts.join(", ") || "no data"}`;
}

function healthCells(hh) {
  if (!hh) return ["—", "—", "—", "—", "—", "—"];
  const memPct = hh.mem_total_bytes ? (100 * hh.mem_used_bytes) / hh.mem_total_bytes : null;
  const diskPct = hh.disk_total_bytes ? (100 * hh.disk_used_bytes) / hh.disk_total_bytes : null;
  return [Fmt.percent(hh.cpu_percent), Fmt.percent(memPct), Fmt.percent(diskPct), Fmt.celsius(hh.temperature_c),
    Fmt.number(hh.outbox_pending) + " records", when(hh.at)];
}

async function viewFleet() {
  const acct = state.account;
  const [st, devs, ov, contracts] = await Promise.all([
    api("GET", `/accounts/${acct}/status`),
    api("GET", `/accounts/${acct}/devices`),
    api("GET", `/accounts/${acct}/overview`),
    api("GET", `/accounts/${acct}/contracts`),
  ]);
  const contract = new Map(contracts.map((c) => [c.id, c]));
  const timeline = new Map(ov.timelines.map((t) => [t.room_id, t.segments]));
  const health = new Map(ov.health.map((x) => [x.device_id, x]));
  const present = new Map(), missing = new Map();
  for (const p of ov.peripherals) {
    if (!p.room_id) continue;
    const m = p.present ? present : missing;
    if (!m.has(p.room_id)) m.set(p.room_id, []);
    m.get(p.room_id).push(peripheralText(p));
  }
  const sites = new Map();
  for (const r of st.rooms) { if (!sites.has(r.site_name)) sites.set(r.site_name, []); sites.get(r.site_name).push(r); }
  const licence = (r) => {
    const c = r.licence_contract_id && contract.get(r.licence_contract_id);
    return c ? `${c.sku} until ${Fmt.day(c.ends_on)}` : r.licence_contract_id ? "Licensed" : "No licence";
  };
  const bySite = [...sites.entries()].map(([site, rooms]) => [
    h("h3", {}, site),
    table(["Room", "Status", "Devices", "Present peripherals", "Missing peripherals", "Licence", "Last 7 days"], rooms.map((r) => [
      h("a", { href: "#room/" + r.id }, r.name), badge(r.state),
      r.devices.map((d) => d.serial).join(", ") || "—",
      (present.get(r.id) || []).join(", ") || "—",
      (missing.get(r.id) || []).join(", ") || "—",
      licence(r),
      Charts.timeline(timelineSummary(r.name, timeline.get(r.id) || []), timeline.get(r.id) || [], ov.since, ov.until),
    ]), "Rooms at " + site),
  ]);
  page("Fleet",
    h("div", { class: "cards" }, Object.entries(st.counts).map(([k, n]) => h("div", { class: "card" }, badge(k), h("strong", {}, Fmt.number(n))))),
    h("h2", {}, "Rooms by site"),
    h("p", { class: "legend" }, "Timeline: ", badge("online"), " ", badge("needs_attention"), " ", badge("offline"), " ", badge("unknown"),
      ` from ${when(ov.since)} to ${when(ov.until)}.`),
    ...(bySite.length ? bySite.flat() : [muted("No rooms yet.")]),
    h("h2", {}, "Devices"),
    table(["Serial", "Model", "Room", "Status", "Last seen", "CPU", "Memory", "Disk", "Temperature", "Outbox", "Health reported"], devs.map((d) => [
      h("a", { href: "#device/" + d.id }, d.serial || d.id), d.model,
      d.room_id ? h("a", { href: "#room/" + d.room_id }, d.room_name || d.room_id) : "—",
      d.state ? badge(d.state) : "—", when(d.last_seen), ...healthCells(health.get(d.id)),
    ]), "Devices"));
}

async function viewOffline() {
  const rooms = await api("GET", `/accounts/${state.account}/offline-rooms`);
  page("Offline rooms",
    rooms.length ? table(["Room", "Site", "Status", "Devices", "Missing peripherals"], rooms.map((r) => [
      h("a", { href: "#room/" + r.id }, r.name), r.site_name, badge(r.state),
      r.devices.map((d) => d.serial).join(", ") || "—",
      r.devices.flatMap((d) => d.missing_peripherals).join(", ") || "—",
    ]), "Rooms that are offline or need attention")
      : h("p", {}, "Every room is online."));
}

async function viewRoom(id) {
  const r = await api("GET", "/rooms/" + id);
  const ov = await api("GET", `/accounts/${r.account_id}/overview`);
  const peripherals = ov.peripherals.filter((p) => p.room_id === id);
  const segs = (ov.timelines.find((t) => t.room_id === id) || { segments: [] }).segments;
  const parts = [
    h("p", {}, "Site: ", r.site_name, " · Status: ", badge(r.state), " · Licence: ", r.licence_contract_id || "none"),
    h("h2", {}, "Online and offline, last 7 days"),
    Charts.timeline(timelineSummary(r.name, segs), segs, ov.since, ov.until),
    h("h2", {}, "Devices"),
    table(["Serial", "Model", "Status", "Last seen", "Missing peripherals"], r.devices.map((d) => [
      h("a", { href: "#device/" + d.device_id }, d.serial || d.device_id), d.model, badge(d.state), when(d.last_seen),
      d.missing_peripherals.join(", ") || "—",
    ]), "Devices in this room"),
    h("h2", {}, "Peripherals"),
    peripherals.length ? table(["Peripheral", "Serial", "Connected to", "State", "Since"], peripherals.map((p) => [
      p.model, p.serial, p.device_id, p.present ? "present" : "missing", when(p.updated_at),
    ]), "Peripherals in this room") : muted("No peripherals reported."),
    h("h2", {}, "Usage, last 7 days"),
    r.usage_7d.length ? table(["Service", "Quantity"], r.usage_7d.map((u) => [Fmt.service(u.service), Fmt.usage(u.quantity, u.unit)]), "Usage in this room, last 7 days") : muted("No usage."),
    h("h2", {}, "Status changes in this room"),
    r.status_history.length ? table(["When", "Device", "State", "Reason"], r.status_history.map((e) => [when(e.at), e.serial || e.device_id, badge(e.state), e.reason || "—"]), "Status changes in this room") : muted("No status changes recorded."),
    h("h2", {}, "Device moves"),
    table(["Serial", "Since", "Until"], r.placements.map((p) => [p.serial, when(p.since), p.until ? when(p.until) : "now"]), "Device moves"),
  ];
  if ((r.state === "offline" || r.state === "needs_attention") && canWrite()) {
    parts.push(h("h2", {}, "Open a support ticket"),
      h("p", {}, "The room's details and its devices' serials, last-seen times and recent health are attached."),
      formOf([
        { name: "subject", label: "Subject", value: `Room ${r.name} is ${r.state.replace("_", " ")}` },
        { name: "description", label: "Description", multiline: true, optional: true },
        { name: "card_code", label: "Support card code" },
      ], "Open ticket", async (v) => {
        const t = await api("POST", `/rooms/${id}/tickets`, v);
        say("Ticket " + t.id + " opened.", false, true);
        location.hash = "#ticket/" + t.id;
      }));
  }
  page("Room " + r.name, ...parts);
}

// ---------- device ----------

function modemChanges(samples) {
  const out = [];
  let last = null;
  for (const s of samples) {
    const key = [s.modem_state, s.operator, s.registration, s.iccid].join("|");
    if (key !== last && (s.modem_state || s.iccid || s.operator)) out.push(s);
    last = key;
  }
  return out;
}

function usageCharts(d, daily) {
  const days = daily.days;
  const byPair = new Map();
  for (const u of days) {
    const k = u.service + "|" + u.unit;
    if (!byPair.has(k)) byPair.set(k, new Map());
    byPair.get(k).set(u.day, (byPair.get(k).get(u.day) || 0) + u.quantity);
  }
  // Every day of the window, so a quiet day shows as a gap rather than vanishing.
  const allDays = [];
  for (let t = Date.parse(daily.first_day + "T00:00:00Z"); t <= Date.parse(daily.last_day + "T00:00:00Z"); t += 86400000) allDays.push(new Date(t).toISOString().slice(0, 10));
  return [...byPair.entries()].map(([k, m]) => {
    const [service, unit] = k.split("|");
    const shown = unit === "seconds" ? "hours" : unit;
    const values = allDays.map((day) => (m.has(day) ? (unit === "seconds" ? m.get(day) / 3600 : m.get(day)) : null));
    const fmt = unit === "bytes" ? Fmt.bytes : unit === "seconds" ? (v) => Fmt.number(v, 1) + " h" : (v) => Fmt.number(v) + " " + unit;
    const total = [...m.values()].reduce((a, b) => a + b, 0);
    return Charts.dailyBars(`${Fmt.service(service)}, ${shown} per day`,
      `${Fmt.service(service)} usage of ${d.serial || d.id} per day in ${shown}: total ${Fmt.usage(total, unit)} over ${allDays.length} days`,
      allDays, [{ label: `${Fmt.service(service)} (${shown})`, values }], fmt);
  });
}

const ACTION_LABEL = { refresh_inventory: "Refresh inventory", suspend: "Suspend", resume: "Resume" };

function commandsTable(list) {
  return list.length ? table(["Sent", "By", "Command", "Reply", "Answered", "Device state"], list.map((c) => [
    c.sent_at ? when(c.sent_at) : "—", c.sent_by || "billing", `${ACTION_LABEL[c.action] || c.action || "command"}${c.service ? " " + Fmt.service(c.service) : ""}`,
    c.ok === null ? "waiting" : c.ok ? "ok" : "refused: " + (c.error || "no reason"),
    c.reply_at ? when(c.reply_at) : "—",
    Object.entries(c.state || {}).map(([k, v]) => `${Fmt.service(k)} ${v}`).join(", ") || "—",
  ]), "Recent commands") : muted("No command sent yet.");
}

// Buttons for the commands the user's role may send; the reply is awaited (bounded) and shown.
function commandPanel(d, list) {
  const box = h("div", { id: "commands" }, commandsTable(list));
  const allowed = [];
  if (canWrite()) allowed.push({ action: "refresh_inventory" });
  if (state.me.is_operator) for (const sv of ["vpn", "sim", "data_ingestion"]) allowed.push({ action: "suspend", service: sv }, { action: "resume", service: sv });
  const nav = state.nav;
  async function send(cmd) {
    const label = `${ACTION_LABEL[cmd.action]}${cmd.service ? " " + Fmt.service(cmd.service) : ""}`;
    try {
      const sent = await api("POST", `/devices/${d.id}/commands`, cmd);
      say(`${label}: sent, waiting for ${d.serial || d.id} to answer…`);
      const deadline = Date.now() + 30000;
      while (Date.now() < deadline && nav === state.nav) {
        const now = await api("GET", `/devices/${d.id}/commands`);
        box.replaceChildren(commandsTable(now));
        const mine = now.find((c) => c.id === sent.id);
        if (mine && mine.ok !== null) {
          say(`${label}: ${d.serial || d.id} answered ${mine.ok ? "ok" : "refused: " + mine.error}.`, !mine.ok);
          return;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      if (nav === state.nav) say(`${label}: no answer yet (the device may be offline); it is listed below when it comes.`, true);
    } catch (err) { if (!err.stale) say(err.message, true); }
  }
  return [
    allowed.length ? h("p", { class: "actions" }, allowed.flatMap((c) => [h("button", { type: "button", onclick: () => send(c) },
      `${ACTION_LABEL[c.action]}${c.service ? " " + Fmt.service(c.service) : ""}`), " "])) : muted("Read-only access: no commands."),
    box,
  ];
}

async function viewDevice(id) {
  const [d, hist, daily, cmds] = await Promise.all([
    api("GET", `/devices/${id}/fleet`),
    api("GET", `/devices/${id}/health?hours=168`),
    api("GET", `/devices/${id}/usage/daily?days=30`),
    api("GET", `/devices/${id}/commands`),
  ]);
  const samples = hist.samples;
  const now = samples[samples.length - 1];
  const xs = samples.map((s) => Date.parse(s.at) / 1000);
  const pct = (a, b) => (b ? (100 * a) / b : null);
  const name = d.serial || d.id;
  const health = [];
  if (now) {
    health.push(table(["Measure", "Value"], [
      ["CPU", Fmt.percent(now.cpu_percent)],
      ["Memory", `${Fmt.bytes(now.mem_used_bytes)} of ${Fmt.bytes(now.mem_total_bytes)} (${Fmt.percent(pct(now.mem_used_bytes, now.mem_total_bytes))})`],
      ["Disk", `${Fmt.bytes(now.disk_used_bytes)} of ${Fmt.bytes(now.disk_total_bytes)} (${Fmt.percent(pct(now.disk_used_bytes, now.disk_total_bytes))})`],
      ["Temperature", Fmt.celsius(now.temperature_c)],
      ["Uptime", Fmt.duration(now.uptime_s)],
      ["Outbox", Fmt.number(now.outbox_pending) + " usage records awaiting receipt"],
      ["Modem", now.modem_state || "—"],
      ["Operator", now.operator || "—"],
      ["Registration", now.registration || "—"],
      ["Signal", Fmt.dbm(now.rssi_dbm)],
      ["ICCID", now.iccid || "—"],
      ["Reported", when(now.at)],
    ], "Current health"));
    health.push(h("h2", {}, "Health, last 7 days"),
      h("div", { class: "charts" },
        Charts.lines("CPU (%)", `CPU of ${name}, last 7 days: now ${Fmt.percent(now.cpu_percent)}`, xs,
          [{ label: "CPU %", values: samples.map((s) => s.cpu_percent) }], (v) => Fmt.number(v) + " %", { range: [0, 100] }),
        Charts.lines("Memory and disk used (%)", `Memory and disk of ${name}, last 7 days: memory ${Fmt.percent(pct(now.mem_used_bytes, now.mem_total_bytes))}, disk ${Fmt.percent(pct(now.disk_used_bytes, now.disk_total_bytes))}`, xs,
          [{ label: "Memory %", values: samples.map((s) => pct(s.mem_used_bytes, s.mem_total_bytes)) },
            { label: "Disk %", values: samples.map((s) => pct(s.disk_used_bytes, s.disk_total_bytes)) }], (v) => Fmt.number(v) + " %", { range: [0, 100] }),
        Charts.lines("Temperature (°C)", `Temperature of ${name}, last 7 days: now ${Fmt.celsius(now.temperature_c)}`, xs,
          [{ label: "Hottest sensor °C", values: samples.map((s) => s.temperature_c) }], (v) => Fmt.number(v) + " °C"),
        samples.some((s) => s.rssi_dbm !== null)
          ? Charts.lines("Modem signal (dBm)", `Modem signal of ${name}, last 7 days: now ${Fmt.dbm(now.rssi_dbm)}`, xs,
            [{ label: "Signal dBm", values: samples.map((s) => s.rssi_dbm) }], (v) => Fmt.number(v) + " dBm")
          : null),
      h("h2", {}, "Modem and SIM history"),
      modemChanges(samples).length ? table(["Since", "Modem", "Operator", "Registration", "Signal", "ICCID"], modemChanges(samples).map((s) => [
        when(s.at), s.modem_state || "—", s.operator || "—", s.registration || "—", Fmt.dbm(s.rssi_dbm), s.iccid || "—",
      ]), "Modem and SIM history") : muted("No modem reported."));
  } else health.push(muted("No health report in the last 7 days."));
  const usage = daily.days;
  if (d.room_id && !d.room_name) { try { d.room_name = (await api("GET", "/rooms/" + d.room_id)).name; } catch (e) { /* the id will do */ } }
  page("Device " + name,
    table(["Field", "Value"], [
      ["Model", d.model], ["Status", badge(d.state)], ["Last seen", when(d.last_seen)],
      ["Room", d.room_id ? h("a", { href: "#room/" + d.room_id }, d.room_name || d.room_id) : "—"],
      ["Warranty coverage until", d.coverage_end ? Fmt.day(d.coverage_end) : "—"],
      ["Missing peripherals", d.missing_peripherals.join(", ") || "—"],
      ["Conditions", (d.conditions || []).map((c) => c === "duplicate_client"
        ? "duplicate_client: two machines are connecting with this device's credentials"
        : c).join("; ") || "—"],
    ], "Device details"),
    h("h2", {}, "Commands"),
    ...commandPanel(d, cmds),
    h("h2", {}, "Health now"),
    ...health,
    h("h2", {}, "Usage per service per day, last 30 days"),
    usage.length ? h("div", { class: "charts" }, usageCharts(d, daily)) : muted("No usage yet."),
    usage.length ? table(["Day", "Service", "Quantity"], usage.map((u) => [Fmt.day(u.day), Fmt.service(u.service), Fmt.usage(u.quantity, u.unit)]), "Usage per day") : null);
}

// ---------- services ----------

async function viewServices() {
  const acct = state.account;
  const [offers, acts, devices, users] = await Promise.all([
    api("GET", "/services"),
    api("GET", `/accounts/${acct}/activations`),
    api("GET", `/accounts/${acct}/devices`),
    api("GET", `/accounts/${acct}/users`),
  ]);
  const subjects = {
    device: devices.map((d) => [d.id, "Device " + (d.serial || d.id)]),
    user: users.map((u) => [u.user_id, "User " + u.email]),
    organization: [[acct, "The whole organization"]],
  };
  const name = new Map(offers.map((o) => [o.code, o.name]));
  function serviceForm(mode, label, submit) {
    const choices = offers.filter((o) => o.activation === mode).map((o) => [o.code, `${o.name} (${o.code}, per ${o.scope})`]);
    return formOf([
      { name: "service_code", label: "Service", options: choices },
      { name: "subject_id", label: "For", options: [...subjects.device, ...subjects.user, ...subjects.organization] },
      ...(mode === "operator" ? [{ name: "note", label: "Details for the operator", multiline: true, optional: true }] : []),
    ], label, async (v) => {
      const offer = offers.find((o) => o.code === v.service_code);
      const kind = subjects.device.some(([id]) => id === v.subject_id) ? "device" : subjects.user.some(([id]) => id === v.subject_id) ? "user" : "organization";
      if (offer.scope !== kind) throw new Error(`${offer.name} is activated per ${offer.scope}: choose a ${offer.scope}.`);
      await submit({ service_code: v.service_code, subject_kind: kind, subject_id: v.subject_id, ...(v.note !== undefined ? { note: v.note } : {}) });
    });
  }
  page("Services",
    h("h2", {}, "Services per device, user and organization"),
    table(["Service", "For", "How", "Status", "From", "Until", "Action"], acts.map((a) => [
      name.get(a.service_code) || a.service_code, `${a.subject_kind} ${a.subject_id}`, a.mode === "self" ? "self-service" : "operator",
      a.status, a.start ? when(a.start) : "—", a.end ? when(a.end) : "—",
      a.status === "active" && a.mode === "self" && canWrite() ? h("button", { type: "button", class: "link", onclick: async () => {
        try { await api("POST", `/accounts/${acct}/activations/${a.id}/deactivate`); await viewServices(); say("Service deactivated."); } catch (err) { say(err.message, true); }
      } }, "Deactivate") : "",
    ]), "Services of this account"),
    ...(canWrite() ? [
      h("h2", {}, "Activate a service (self-service)"),
      serviceForm("self", "Activate", async (b) => { await api("POST", `/accounts/${acct}/activations`, b); await viewServices(); say("Service activated."); }),
      h("h2", {}, "Ask an operator (EdgeService, SIM, user and organization services)"),
      serviceForm("operator", "Send request", async (b) => { await api("POST", `/accounts/${acct}/activation-requests`, b); await viewServices(); say("Request sent: an operator will confirm it."); }),
    ] : [muted("Read-only access: an admin of this account activates services.")]));
}

// ---------- contracts, licences, warranty, entitlement and spares ----------

async function viewContracts() {
  const acct = state.account;
  const [list, ent, st] = await Promise.all([
    api("GET", `/accounts/${acct}/contracts`),
    api("GET", `/accounts/${acct}/entitlement`),
    api("GET", `/accounts/${acct}/status`),
  ]);
  const byContract = new Map();
  for (const r of st.rooms) if (r.licence_contract_id) {
    if (!byContract.has(r.licence_contract_id)) byContract.set(r.licence_contract_id, []);
    byContract.get(r.licence_contract_id).push(r.name);
  }
  page("Contracts and licences",
    h("div", { class: "cards" },
      h("div", { class: "card" }, "Licensed rooms", h("strong", { id: "licensed-rooms" }, Fmt.number(ent.licensed_rooms))),
      h("div", { class: "card" }, "On-site spares", h("strong", { id: "spares" }, Fmt.number(ent.spares))),
      h("div", { class: "card" }, "Counted at", h("strong", {}, ent.principal_id))),
    h("p", { class: "muted" }, "One on-site spare per 50 licensed rooms, counted at the parent entity and accumulating."),
    h("h2", {}, "Contracts"),
    list.length ? table(["Contract", "Product", "Term", "Licences", "Licences used", "Purchased", "Starts", "Ends (warranty)", "Status", "Spares granted"], list.map((c) => [
      c.id, c.sku, c.term_years + (c.term_years === 1 ? " year" : " years"), Fmt.number(c.licences), Fmt.number(c.licences_used),
      when(c.purchased_at), Fmt.day(c.starts_on), Fmt.day(c.ends_on), c.status + (c.cancelled_at ? " " + when(c.cancelled_at) : ""), Fmt.number(c.spares_granted),
    ]), "Contracts") : muted("No contracts."),
    h("h2", {}, "Licences per room"),
    table(["Room", "Site", "Licence", "Warranty until"], st.rooms.map((r) => {
      const c = list.find((x) => x.id === r.licence_contract_id);
      return [h("a", { href: "#room/" + r.id }, r.name), r.site_name, c ? `${c.sku} (${c.id})` : "No licence", c ? Fmt.day(c.ends_on) : "—"];
    }), "Licences per room"));
}

// ---------- balance, ledger, coupons, cart ----------

// Fetch a document with the session token and hand it to the browser as a download.
async function download(path, filename) {
  const r = await fetch(API + path, { headers: { "Authorization": "Bearer " + state.token } });
  if (!r.ok) throw new Error(`Download failed (${r.status})`);
  const url = URL.createObjectURL(await r.blob());
  const a = h("a", { href: url, download: filename }, filename);
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  say("Downloaded " + filename + ".");
}

function downloadButton(label, path, filename) {
  return h("button", { type: "button", class: "link", onclick: () => download(path, filename).catch((err) => say(err.message, true)) }, label);
}

function standingBanner(st) {
  if (st.state === "notice") {
    // Our own words rather than the notice's text, so the deadline reads in the portal's one format.
    return h("div", { class: "banner", id: "standing", role: "alert" },
      h("strong", {}, "Balance notice: "), `your balance is ${Fmt.logbit(st.balance)}.`,
      st.deadline ? [" Top up before ", h("strong", {}, when(st.deadline)), ": after that the account and all its services are suspended."] : null);
  }
  if (st.state === "suspended") {
    return h("div", { class: "banner bad", id: "standing", role: "alert" },
      h("strong", {}, "Account suspended"), st.since ? ` since ${when(st.since)}` : "",
      ". Every service is stopped until a credit brings the balance back to zero or above.");
  }
  return h("div", { class: "banner ok", id: "standing" }, h("strong", {}, "Account in good standing"), ": no notice.");
}

async function viewBalance() {
  const acct = state.account;
  const [bal, led, money, orders, invoices] = await Promise.all([
    api("GET", `/accounts/${acct}/balance`),
    api("GET", `/accounts/${acct}/ledger`),
    api("GET", `/accounts/${acct}/money`),
    api("GET", `/accounts/${acct}/orders`).catch(() => []),
    api("GET", `/accounts/${acct}/invoices`).catch(() => []),
  ]);
  const months = [...new Set(money.cost_by_service.map((c) => c.month))].sort();
  const services = [...new Set(money.cost_by_service.map((c) => c.service_code))].sort();
  const cost = new Map(money.cost_by_service.map((c) => [c.month + "|" + c.service_code, c.logbit]));
  const monthTotal = (m) => money.cost_by_service.filter((c) => c.month === m).reduce((a, c) => a + Number(c.logbit), 0);
  // Charges are negative ledger amounts; the chart shows what was charged, as a positive height.
  const charged = (m, sv) => -Number(cost.get(m + "|" + sv));
  const last = months[months.length - 1];
  const charts = [];
  if (months.length) {
    const lastServices = services.filter((sv) => cost.has(last + "|" + sv));
    charts.push(Charts.categoryBars(`Logbit charged per service, ${last}`,
      `Logbit charged per service in ${last}: ` + lastServices.map((sv) => `${sv} ${Fmt.number(charged(last, sv))}`).join(", "),
      lastServices, lastServices.map((sv) => charged(last, sv)), (v) => Fmt.number(v) + " logbit"));
  }
  if (money.balance_history.length > 1) {
    const pts = money.balance_history;
    charts.push(Charts.lines("Balance (logbit)", `Balance over time: now ${Fmt.logbit(bal.logbit)}`,
      pts.map((p) => Date.parse(p.at) / 1000), [{ label: "Balance", values: pts.map((p) => Number(p.balance)) }], (v) => Fmt.number(v) + " logbit", { step: true }));
  }
  page("Balance",
    standingBanner(money.standing),
    h("p", { class: "balance", id: "balance-value" }, Fmt.logbit(bal.logbit)),
    ...charts,
    h("h2", {}, "Cost of the month by service"),
    months.length ? table(["Month", "Service", "Logbit"], months.flatMap((m) => [
      ...services.filter((s) => cost.has(m + "|" + s)).map((s) => [m, s, Fmt.decimalText(cost.get(m + "|" + s))]),
      [m, h("strong", {}, "Total"), h("strong", {}, Fmt.decimalText(String(monthTotal(m))))],
    ]), "Cost of the month by service") : muted("No month closed yet: charges appear after the monthly close."),
    months.length ? h("p", {}, "Statements: ", ...months.map((m) => [downloadButton(m, `/accounts/${acct}/statements/${m}`, `statement-${acct}-${m}.html`), " ",
      downloadButton(`${m} PDF`, `/accounts/${acct}/statements/${m}.pdf`, `statement-${acct}-${m}.pdf`), " "]),
      " · Ledger CSV: ", ...months.map((m) => [downloadButton(m, `/accounts/${acct}/exports/${m}/ledger.csv`, `ledger-${acct}-${m}.csv`), " "])) : null,
    h("h2", {}, "Orders"),
    orders.length ? table(["Order", "Placed", "Channel", "Credits", "Total", "Status", "Invoice"], orders.map((o) => [
      o.order_id, when(o.created_at), o.channel, Fmt.logbit(o.credits), Fmt.euro(o.total), o.status.replaceAll("_", " "),
      o.invoice ? [downloadButton(o.invoice, `/invoices/${o.invoice}`, `invoice-${o.invoice}.html`), " ",
        downloadButton("PDF", `/invoices/${o.invoice}.pdf`, `invoice-${o.invoice}.pdf`)] : "—",
    ]), "Orders") : muted("No orders."),
    h("h2", {}, "Invoices"),
    invoices.length ? table(["Invoice", "Issued", "Order", "Total", "Download"], invoices.map((i) => [
      i.number, when(i.issued_at), i.order_id, Fmt.euro(i.total), [downloadButton("Download " + i.number, i.url.replace(/^\/api\/v1/, ""), `invoice-${i.number}.html`), " ",
        downloadButton("PDF " + i.number, i.pdf_url.replace(/^\/api\/v1/, ""), `invoice-${i.number}.pdf`)],
    ]), "Invoices") : muted("No invoices."),
    ...(canWrite() ? [
      h("h2", {}, "Redeem coupon"),
      formOf([{ name: "code", label: "Enter coupon" }], "Redeem", async (v) => {
        const r = await api("POST", `/accounts/${state.account}/coupons`, v);
        await viewBalance();
        say(`Coupon redeemed: ${Fmt.logbit(r.credited)} credited.`);
      }, true)] : []),
    h("h2", {}, "Ledger"),
    table(led.columns, led.rows, "Ledger"));
}

// ---------- operator console ----------

async function viewOperator() {
  if (!state.me.is_operator) { page("Operator console", muted("Operators only.")); return; }
  const [requests, queue, notice] = await Promise.all([
    api("GET", "/operator/activation-requests"),
    api("GET", "/orders?status=awaiting_confirmation"),
    api("GET", "/operator/accounts-in-notice"),
  ]);
  const names = new Map(state.me.accounts.map((a) => [a.id, a.name]));
  const issued = h("div", { id: "issued-coupons", "aria-live": "polite" });
  const issuedCard = h("div", { id: "issued-card", "aria-live": "polite" });
  const decide = (r, verdict) => h("button", { type: "button", "aria-label": `${verdict === "approve" ? "Approve" : "Reject"} request ${r.id}`, onclick: async () => {
    try {
      await api("POST", `/accounts/${r.account_id}/activation-requests/${r.id}/${verdict}`, { note: `${verdict}d in the operator console` });
      await viewOperator(); say(`Request ${r.id} ${verdict === "approve" ? "approved" : "rejected"}.`);
    } catch (err) { say(err.message, true); }
  } }, verdict === "approve" ? "Approve" : "Reject");
  page("Operator console",
    h("h2", {}, "Activation requests"),
    requests.length ? table(["Request", "Account", "Service", "For", "Note", "Requested by", "Decide"], requests.map((r) => [
      String(r.id), names.get(r.account_id) || r.account_id, r.service_code, `${r.subject_kind} ${r.subject_id}`, r.note || "—", r.requested_by,
      h("span", {}, decide(r, "approve"), " ", decide(r, "reject")),
    ]), "Activation requests") : muted("No request waiting."),
    h("h2", {}, "Orders to confirm"),
    queue.length ? table(["Order", "Account", "Placed", "Channel", "Total", "Confirm"], queue.map((o) => [
      o.order_id, names.get(o.account_id) || o.account_id, when(o.created_at), o.channel, Fmt.euro(o.total),
      formOf([{ name: "document", label: `Reference for order ${o.order_id}` }], "Confirm", async (v) => {
        await api("POST", `/orders/${o.order_id}/confirm`, v); await viewOperator(); say(`Order ${o.order_id} confirmed.`);
      }, true),
    ]), "Orders to confirm") : muted("No order waiting."),
    h("h2", {}, "Issue coupons"),
    formOf([{ name: "logbit", label: "Logbit per coupon", type: "number", min: 1, step: 1 }, { name: "count", label: "How many", type: "number", min: 1, value: 1 }], "Issue coupons", async (v) => {
      const r = await api("POST", "/operator/coupons", { logbit: String(v.logbit), count: v.count });
      issued.replaceChildren(table(["Coupon code", "Logbit"], r.codes.map((c) => [c, Fmt.logbit(r.logbit)]), "Coupons issued"));
      say(`${r.codes.length} coupon(s) of ${Fmt.logbit(r.logbit)} issued: hand the codes over now, they are not shown again.`);
    }, true),
    issued,
    h("h2", {}, "Issue a support card"),
    formOf([{ name: "account_id", label: "Issue to account", options: state.me.accounts.filter((a) => a.kind === "customer").map((a) => [a.id, a.name]) }], "Issue support card", async (v) => {
      const r = await api("POST", "/operator/support-cards", v);
      issuedCard.replaceChildren(table(["Support card code", "Account", "Minutes"], [[r.code, names.get(r.account_id) || r.account_id, Fmt.number(r.minutes)]], "Support card issued"));
      say(`Support card of ${r.minutes} minutes issued to ${names.get(r.account_id) || r.account_id}.`);
    }, true),
    issuedCard,
    h("h2", {}, "Accounts in notice or suspended"),
    notice.length ? table(["Account", "State", "Balance", "Deadline", "Notice"], notice.map((n) => [
      n.name, n.state, Fmt.logbit(n.balance), n.deadline ? when(n.deadline) : "—", n.message || "—",
    ]), "Accounts in notice") : muted("Every account is in good standing."));
}

async function viewBuy() {
  const packs = await api("GET", "/packs");
  const quantities = {};
  const cartBox = h("div", {});
  async function refresh() {
    const items = Object.entries(quantities).filter(([, q]) => q > 0).map(([sku, quantity]) => ({ sku, quantity }));
    if (!items.length) { cartBox.replaceChildren(muted("The cart is empty.")); return; }
    const c = await api("POST", "/cart/quote", { items });
    cartBox.replaceChildren(
      table(["Name", "Qty", "Credits", "Price", "Tax", "Total"], c.lines.map((l) => [l.sku, Fmt.number(l.quantity), Fmt.logbit(l.credits), Fmt.euro(l.price), Fmt.euro(l.tax), Fmt.euro(l.total)]), "Cart"),
      h("p", {}, h("strong", {}, "Total: " + Fmt.euro(c.total))),
      canWrite() ? h("p", {}, ...[["card", "Pay " + Fmt.euro(c.total)], ["transfer", "Order by bank transfer"]].map(([channel, label]) => [h("button", { type: "button", onclick: async () => {
        try {
          const o = await api("POST", `/accounts/${state.account}/orders`, { items, channel });
          say(`Order ${o.order_id} for ${Fmt.euro(o.total)}: ${o.status.replaceAll("_", " ")}.`);
        } catch (err) { say(err.message, true); }
      } }, label), " "])) : muted("Read-only access: an admin places orders."));
  }
  page("Buy credits",
    table(["Package", "Credits", "Price", "Add"], packs.map((p) => [p.sku, Fmt.logbit(p.credits), Fmt.euro(p.price) + " + IVA",
      h("button", { type: "button", "aria-label": "Add " + p.sku, onclick: async () => { quantities[p.sku] = (quantities[p.sku] || 0) + 1; await refresh(); } }, "Add")]), "Credit packs"),
    h("h2", {}, "Cart"), cartBox);
  await refresh();
}

// ---------- tickets ----------

async function viewTickets() {
  const [list, cards, st] = await Promise.all([
    api("GET", `/accounts/${state.account}/tickets`),
    api("GET", `/accounts/${state.account}/support-cards`),
    api("GET", `/accounts/${state.account}/status`),
  ]);
  const roomName = new Map(st.rooms.map((r) => [r.id, r.name]));
  page("Tickets",
    canWrite() ? h("p", {}, h("a", { href: "#newticket" }, "Open a new ticket")) : null,
    list.length ? table(["Ticket", "Subject", "Room", "Status", "Opened", "By"], list.map((t) => [
      h("a", { href: "#ticket/" + t.id }, t.id), t.subject, t.room_id ? roomName.get(t.room_id) || t.room_id : "whole account", t.status, when(t.created_at), t.opened_by,
    ]), "Tickets") : h("p", {}, "No tickets yet."),
    h("h2", {}, "Support cards"),
    cards.length ? table(["Card", "Minutes left", "Minutes bought", "Valid until", "Status"], cards.map((c) => [
      "…" + c.hint, Fmt.number(c.minutes_left), Fmt.number(c.minutes_total), when(c.expires_at), c.active ? "active" : "not usable",
    ]), "Support cards") : h("p", {}, "No support card: buy one to open tickets."));
}

async function viewNewTicket() {
  const st = await api("GET", `/accounts/${state.account}/status`);
  if (!canWrite()) { page("New ticket", muted("Read-only access: an admin of this account opens tickets.")); return; }
  page("New ticket",
    h("p", {}, "A ticket about a room attaches the room's details and its devices' status; a ticket about the whole account attaches nothing."),
    formOf([
      { name: "room_id", label: "About", options: [["", "The whole account"], ...st.rooms.map((r) => [r.id, `Room ${r.name} (${r.site_name})`])] },
      { name: "subject", label: "Subject" },
      { name: "description", label: "Description", multiline: true, optional: true },
      { name: "card_code", label: "Support card code" },
    ], "Open ticket", async (v) => {
      const body = { subject: v.subject, description: v.description, card_code: v.card_code };
      const t = v.room_id ? await api("POST", `/rooms/${v.room_id}/tickets`, body) : await api("POST", `/accounts/${state.account}/tickets`, body);
      say("Ticket " + t.id + " opened.", false, true);
      location.hash = "#ticket/" + t.id;
    }));
}

async function viewTicket(id) {
  const t = await api("GET", "/tickets/" + id);
  const snap = t.snapshot || {};
  const rows = [["Subject", t.subject], ["Status", t.status], ["Opened", when(t.created_at)], ["By", t.opened_by]];
  if (t.room_id) rows.push(["Room", (snap.name || "") + " — " + (snap.site || "")], ["Room status when opened", badge(snap.state || "empty")]);
  else rows.push(["About", "the whole account"]);
  if (t.description) rows.push(["Description", t.description]);
  page("Ticket " + t.id,
    table(["Field", "Value"], rows, "Ticket details"),
    ...(t.room_id ? [h("h2", {}, "Devices attached"),
      table(["Serial", "Model", "Status", "Last seen", "Recent health"], (snap.devices || []).map((d) => [
        d.serial, d.model, badge(d.state), when(d.last_seen), (d.recent || []).map((e) => `${e.state} ${when(e.at)}`).join("; ") || "—",
      ]), "Devices attached to the ticket")] : []),
    h("h2", {}, "History"),
    table(["When", "Who", "Note", "Minutes"], t.events.map((e) => [when(e.at), e.author, e.note, Fmt.number(e.minutes || 0)]), "Ticket history"));
}

// ---------- router ----------

const routes = {
  fleet: viewFleet, offline: viewOffline, services: viewServices, contracts: viewContracts, balance: viewBalance,
  buy: viewBuy, tickets: viewTickets, newticket: viewNewTicket, operator: viewOperator, room: viewRoom, device: viewDevice, ticket: viewTicket,
};

async function route() {
  state.nav++;
  const hash = location.hash.slice(1);
  // A status line said on one page does not follow the user to the next.
  if (state.flash === null) say("");
  state.flash = null;
  if (hash.startsWith("accept=")) return viewAccept(decodeURIComponent(hash.slice(7)));
  if (hash.startsWith("sso=") || hash.startsWith("sso-error=")) return finishSso(hash);
  if (!state.token) return viewSignIn();
  if (!state.me) { try { await loadMe(); } catch (err) { say(err.message, true); return; } }
  const [name, arg] = hash.split("/");
  const view = routes[name] || viewFleet;
  for (const a of document.querySelectorAll("nav a")) a.toggleAttribute("aria-current", a.getAttribute("href") === "#" + (name || "fleet"));
  for (const a of document.querySelectorAll("nav a[aria-current]")) a.setAttribute("aria-current", "page");
  try { await view(arg ? decodeURIComponent(arg) : undefined); } catch (err) { if (!err.stale) say(err.message, true); }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signout").addEventListener("click", signOutEverywhere);
  document.getElementById("account").addEventListener("change", async (e) => {
    await selectAccount(e.target.value); route();
  });
  window.addEventListener("hashchange", route);
  route();
});
