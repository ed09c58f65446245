// Logbot portal: a small single page over the fleet API (/api/v1), no framework, no CDN.
// The session token lives in sessionStorage; every DOM text goes through textContent.
"use strict";

const API = "/api/v1";
const state = { token: sessionStorage.getItem("lb_token"), me: null, account: null };

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

function say(text, error) {
  const s = document.getElementById("status");
  s.textContent = text || "";
  s.className = error ? "error" : "";
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401 && path !== "/auth/login") { signOut(); throw new Error("Please sign in again."); }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const d = data && data.detail;
    throw new Error(typeof d === "string" ? d : Array.isArray(d) ? d.map((e) => e.msg).join("; ") : "Request failed (" + r.status + ")");
  }
  return data;
}

function badge(s) {
  const label = { online: "Online", offline: "Offline", needs_attention: "Needs attention", empty: "No devices" }[s] || s;
  return h("span", { class: "badge state-" + s }, label);
}

function when(iso) {
  if (!iso) return "never";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function table(headers, rows, caption) {
  return h("table", {},
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", class: /Logbit|Cost|Price|Tax|Total|Credits|Qty/.test(x) ? "num" : null }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: /Logbit|Cost|Price|Tax|Total|Credits|Qty/.test(headers[i]) ? "num" : null }, c))))));
}

function formOf(fields, submitLabel, onSubmit, inline) {
  const inputs = {};
  const form = h("form", { class: inline ? "inline" : null, onsubmit: async (e) => {
    e.preventDefault();
    const values = {};
    for (const [k, el] of Object.entries(inputs)) values[k] = el.type === "number" ? Number(el.value) : el.value;
    const btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    try { await onSubmit(values); } catch (err) { say(err.message, true); } finally { btn.disabled = false; }
  } });
  for (const f of fields) {
    let el;
    if (f.options) el = h("select", { name: f.name }, f.options.map(([v, t]) => h("option", { value: v }, t)));
    else if (f.multiline) el = h("textarea", { name: f.name, rows: 3 });
    else el = h("input", { name: f.name, type: f.type || "text", required: f.optional ? null : true, min: f.min, value: f.value, autocomplete: f.autocomplete || "off" });
    inputs[f.name] = el;
    form.append(h("label", {}, f.label, el));
  }
  form.append(h("button", { type: "submit" }, submitLabel));
  return form;
}

function page(title, ...content) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h1", {}, title), ...content);
  document.title = title + " · Logbot portal";
  main.focus();
}

// Inline SVG bar chart of hourly values.
function barChart(points, label) {
  const w = 720, hgt = 150, pad = 4;
  const max = Math.max(1, ...points.map((p) => p.value));
  const bw = points.length ? (w - pad * 2) / points.length : 0;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  points.forEach((p, i) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    const bh = (p.value / max) * (hgt - pad * 2);
    r.setAttribute("x", pad + i * bw); r.setAttribute("width", Math.max(1, bw - 1));
    r.setAttribute("y", hgt - pad - bh); r.setAttribute("height", bh);
    const t = document.createElementNS("http://www.w3.org/2000/svg", "title");
    t.textContent = `${p.hour}: ${p.value}`;
    r.append(t); svg.append(r);
  });
  return svg;
}

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
      say("Signed in.");
      await loadMe();
      location.hash = "#fleet";
    }));
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

async function loadMe() {
  state.me = await api("GET", "/me");
  const sel = document.getElementById("account");
  sel.replaceChildren(...state.me.accounts.map((a) => h("option", { value: a.id }, `${a.name} (${a.role})`)));
  const saved = sessionStorage.getItem("lb_account");
  // Default to a top-most customer account in scope (its subsidiaries come after it).
  const ids = new Set(state.me.accounts.map((a) => a.id));
  const top = state.me.accounts.find((a) => a.kind === "customer" && !ids.has(a.parent_id)) || state.me.accounts[0] || {};
  state.account = ids.has(saved) ? saved : top.id;
  sel.value = state.account || "";
  document.getElementById("nav").hidden = false;
}

// ---------- fleet and rooms ----------

function roomRow(r) {
  return [
    h("a", { href: "#room/" + r.id }, r.name), r.site_name, badge(r.state),
    r.devices.map((d) => d.serial).join(", ") || "—",
    r.licence_contract_id ? "Licensed" : "No licence",
  ];
}

async function viewFleet() {
  const st = await api("GET", `/accounts/${state.account}/status`);
  page("Fleet",
    h("div", { class: "cards" }, Object.entries(st.counts).map(([k, n]) => h("div", { class: "card" }, badge(k), h("strong", {}, n)))),
    h("h2", {}, "Rooms"),
    table(["Room", "Site", "Status", "Devices", "Licence"], st.rooms.map(roomRow), "Rooms and their status"),
    h("h2", {}, "Devices"),
    table(["Serial", "Model", "Room", "Status", "Last seen", "Credentials"], (await api("GET", `/accounts/${state.account}/devices`)).map((d) => [
      h("a", { href: "#device/" + d.id }, d.serial || d.id), d.model, d.room_name || d.room_id || "—",
      d.state ? badge(d.state) : "—", d.last_seen || "—", d.has_credentials ? "issued" : "none",
    ]), "Devices"));
}

async function viewOffline() {
  const rooms = await api("GET", `/accounts/${state.account}/offline-rooms`);
  page("Offline rooms",
    rooms.length ? table(["Room", "Site", "Status", "Devices", "Licence"], rooms.map(roomRow), "Rooms that are offline or need attention")
      : h("p", {}, "Every room is online."));
}

async function viewRoom(id) {
  const r = await api("GET", "/rooms/" + id);
  const parts = [
    h("p", {}, "Site: ", r.site_name, " · Status: ", badge(r.state)),
    h("h2", {}, "Devices"),
    table(["Serial", "Model", "Status", "Last seen", "Missing peripherals"], r.devices.map((d) => [
      h("a", { href: "#device/" + d.device_id }, d.serial || d.device_id), d.model, badge(d.state), when(d.last_seen),
      d.missing_peripherals.join(", ") || "—",
    ]), "Devices in this room"),
    h("h2", {}, "Usage, last 7 days"),
    r.usage_7d.length ? table(["Service", "Unit", "Quantity"], r.usage_7d.map((u) => [u.service, u.unit, u.quantity]), "Usage in this room, last 7 days") : h("p", { class: "muted" }, "No usage."),
    h("h2", {}, "Status changes in this room"),
    r.status_history.length ? table(["When", "Device", "State", "Reason"], r.status_history.map((e) => [when(e.at), e.serial || e.device_id, e.state, e.reason || "—"]), "Status changes in this room") : h("p", { class: "muted" }, "No status changes recorded."),
    h("h2", {}, "Device moves"),
    table(["Serial", "Since", "Until"], r.placements.map((p) => [p.serial, when(p.since), p.until ? when(p.until) : "now"]), "Device moves"),
  ];
  if (r.state === "offline" || r.state === "needs_attention") {
    parts.push(h("h2", {}, "Open a support ticket"),
      h("p", {}, "The room's details and its devices' serials, last-seen times and recent health are attached."),
      formOf([
        { name: "subject", label: "Subject", value: `Room ${r.name} is ${r.state.replace("_", " ")}` },
        { name: "description", label: "Description", multiline: true, optional: true },
        { name: "card_code", label: "Support card code" },
      ], "Open ticket", async (v) => {
        const t = await api("POST", `/rooms/${id}/tickets`, v);
        say("Ticket " + t.id + " opened.");
        location.hash = "#ticket/" + t.id;
      }));
  }
  page("Room " + r.name, ...parts);
}

async function viewDevice(id) {
  const d = await api("GET", `/devices/${id}/fleet`);
  const usage = await api("GET", `/devices/${id}/usage/hourly?hours=168`);
  const byHour = new Map();
  for (const u of usage) byHour.set(u.hour, (byHour.get(u.hour) || 0) + u.quantity);
  const points = [...byHour.entries()].map(([hour, value]) => ({ hour, value }));
  page("Device " + (d.serial || d.id),
    table(["Field", "Value"], [
      ["Model", d.model], ["Status", badge(d.state)], ["Last seen", when(d.last_seen)],
      ["Room", d.room_id ? h("a", { href: "#room/" + d.room_id }, d.room_id) : "—"],
      ["Warranty coverage until", d.coverage_end || "—"],
      ["Missing peripherals", d.missing_peripherals.join(", ") || "—"],
      ["Conditions", (d.conditions || []).map((c) => c === "duplicate_client"
        ? "duplicate_client: two machines are connecting with this device's credentials"
        : c).join("; ") || "—"],
    ], "Device details"),
    h("h2", {}, "Usage per hour, last 7 days"),
    points.length ? barChart(points, `Hourly usage of ${d.serial}: ${points.length} hours, peak ${Math.max(...points.map((p) => p.value))}`) : h("p", { class: "muted" }, "No usage yet."),
    points.length ? table(["Hour", "Quantity"], points.map((p) => [p.hour, p.value]), "Usage per hour") : null);
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
      a.status === "active" && a.mode === "self" ? h("button", { type: "button", class: "link", onclick: async () => {
        try { await api("POST", `/accounts/${acct}/activations/${a.id}/deactivate`); say("Service deactivated."); viewServices(); } catch (err) { say(err.message, true); }
      } }, "Deactivate") : "",
    ]), "Services of this account"),
    h("h2", {}, "Activate a service (self-service)"),
    serviceForm("self", "Activate", async (b) => { await api("POST", `/accounts/${acct}/activations`, b); say("Service activated."); viewServices(); }),
    h("h2", {}, "Ask an operator (EdgeService, SIM, user and organization services)"),
    serviceForm("operator", "Send request", async (b) => { await api("POST", `/accounts/${acct}/activation-requests`, b); say("Request sent: an operator will confirm it."); viewServices(); }));
}

// ---------- balance, ledger, coupons, cart ----------

async function viewBalance() {
  const [bal, led] = await Promise.all([
    api("GET", `/accounts/${state.account}/balance`),
    api("GET", `/accounts/${state.account}/ledger`),
  ]);
  page("Balance",
    h("p", { class: "balance", id: "balance-value" }, bal.logbit + " logbit"),
    h("h2", {}, "Redeem coupon"),
    formOf([{ name: "code", label: "Enter coupon" }], "Redeem", async (v) => {
      const r = await api("POST", `/accounts/${state.account}/coupons`, v);
      say(`Coupon redeemed: ${r.credited} logbit credited.`);
      await viewBalance();
    }, true),
    h("h2", {}, "Ledger"),
    table(led.columns, led.rows, "Ledger"));
}

async function viewBuy() {
  const packs = await api("GET", "/packs");
  const quantities = {};
  const cartBox = h("div", {});
  async function refresh() {
    const items = Object.entries(quantities).filter(([, q]) => q > 0).map(([sku, quantity]) => ({ sku, quantity }));
    if (!items.length) { cartBox.replaceChildren(h("p", { class: "muted" }, "The cart is empty.")); return; }
    const c = await api("POST", "/cart/quote", { items });
    cartBox.replaceChildren(
      table(["Name", "Qty", "Credits", "Price", "Tax", "Total"], c.lines.map((l) => [l.sku, l.quantity, l.credits + " logbit", "€" + l.price, "€" + l.tax, "€" + l.total]), "Cart"),
      h("p", {}, h("strong", {}, "Total: €" + c.total)),
      h("button", { type: "button", onclick: async () => {
        try {
          const o = await api("POST", `/accounts/${state.account}/orders`, { items });
          say(`Order ${o.order_id} for €${o.total}: ${o.status.replaceAll("_", " ")}.`);
        } catch (err) { say(err.message, true); }
      } }, "Pay " + c.total + " €"));
  }
  page("Buy credits",
    table(["Package", "Credits", "Price", "Add"], packs.map((p) => [p.sku, p.credits + " logbit", "€" + p.price + " + IVA",
      h("button", { type: "button", "aria-label": "Add " + p.sku, onclick: async () => { quantities[p.sku] = (quantities[p.sku] || 0) + 1; await refresh(); } }, "Add")]), "Credit packs"),
    h("h2", {}, "Cart"), cartBox);
  await refresh();
}

// ---------- tickets ----------

async function viewTickets() {
  const [list, cards] = await Promise.all([
    api("GET", `/accounts/${state.account}/tickets`),
    api("GET", `/accounts/${state.account}/support-cards`),
  ]);
  page("Tickets", list.length ? table(["Ticket", "Subject", "Room", "Status", "Opened", "By"], list.map((t) => [
    h("a", { href: "#ticket/" + t.id }, t.id), t.subject, t.room_id || "—", t.status, when(t.created_at), t.opened_by,
  ]), "Tickets") : h("p", {}, "No tickets yet."),
  h("h2", {}, "Support cards"),
  cards.length ? table(["Card", "Minutes left", "Of", "Valid until", "Status"], cards.map((c) => [
    "…" + c.hint, c.minutes_left, c.minutes_total, when(c.expires_at), c.active ? "active" : "not usable",
  ]), "Support cards") : h("p", {}, "No support card: buy one to open tickets."));
}

async function viewTicket(id) {
  const t = await api("GET", "/tickets/" + id);
  const snap = t.snapshot || {};
  page("Ticket " + t.id,
    table(["Field", "Value"], [["Subject", t.subject], ["Status", t.status], ["Opened", when(t.created_at)], ["By", t.opened_by], ["Room", (snap.name || "") + " — " + (snap.site || "")], ["Room status when opened", badge(snap.state || "empty")]], "Ticket details"),
    h("h2", {}, "Devices attached"),
    table(["Serial", "Model", "Status", "Last seen", "Recent health"], (snap.devices || []).map((d) => [
      d.serial, d.model, badge(d.state), when(d.last_seen), (d.recent || []).map((e) => `${e.state} ${when(e.at)}`).join("; ") || "—",
    ]), "Devices attached to the ticket"),
    h("h2", {}, "History"),
    table(["When", "Who", "Note", "Minutes"], t.events.map((e) => [when(e.at), e.author, e.note, e.minutes]), "Ticket history"));
}

// ---------- router ----------

const routes = {
  fleet: viewFleet, offline: viewOffline, services: viewServices, balance: viewBalance,
  buy: viewBuy, tickets: viewTickets, room: viewRoom, device: viewDevice, ticket: viewTicket,
};

async function route() {
  const hash = location.hash.slice(1);
  if (hash.startsWith("accept=")) return viewAccept(decodeURIComponent(hash.slice(7)));
  if (!state.token) return viewSignIn();
  if (!state.me) { try { await loadMe(); } catch (err) { say(err.message, true); return; } }
  const [name, arg] = hash.split("/");
  const view = routes[name] || viewFleet;
  for (const a of document.querySelectorAll("nav a")) a.toggleAttribute("aria-current", a.getAttribute("href") === "#" + (name || "fleet"));
  for (const a of document.querySelectorAll("nav a[aria-current]")) a.setAttribute("aria-current", "page");
  try { await view(arg ? decodeURIComponent(arg) : undefined); } catch (err) { say(err.message, true); }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signout").addEventListener("click", signOutEverywhere);
  document.getElementById("account").addEventListener("change", (e) => {
    state.account = e.target.value; sessionStorage.setItem("lb_account", state.account); route();
  });
  window.addEventListener("hashchange", route);
  route();
});
