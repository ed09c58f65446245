// Logbot portal: one date and number format everywhere.
// Dates are shown in the account's time zone (from the API) and the user's locale
// (the browser's, through Intl). Amounts from the API are decimal strings and are
// formatted as strings, digit by digit, so money is never rounded by a float.
"use strict";

const Fmt = (() => {
  let zone = "UTC";
  const locale = navigator.language || "en";
  const parts = new Intl.NumberFormat(locale).formatToParts(12345.6);
  const group = (parts.find((p) => p.type === "group") || { value: "," }).value;
  const decimal = (parts.find((p) => p.type === "decimal") || { value: "." }).value;
  let dtf = null, dayf = null, hourf = null;

  function setZone(name) {
    try { new Intl.DateTimeFormat(locale, { timeZone: name }); zone = name || "UTC"; } catch (e) { zone = "UTC"; }
    dtf = new Intl.DateTimeFormat(locale, { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
    dayf = new Intl.DateTimeFormat(locale, { timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit" });
    hourf = new Intl.DateTimeFormat(locale, { timeZone: zone, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  }
  setZone("UTC");

  // An ISO instant (…Z) as a date and time in the account's zone, e.g. "04/05/2026, 11:00 CEST".
  function dateTime(iso) {
    if (!iso) return "never";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : dtf.format(d);
  }
  // A calendar day (YYYY-MM-DD, already in the account's zone) in the user's locale.
  function day(ymd) {
    if (!ymd) return "—";
    const d = new Date(String(ymd).slice(0, 10) + "T00:00:00Z");
    return isNaN(d) ? String(ymd) : dayf.format(d);
  }
  // Seconds since the epoch (uPlot's x values) as a short local time for axes.
  function tick(seconds) { return hourf.format(new Date(seconds * 1000)); }

  // A decimal string ("-1234.5") with the locale's separators, exactly, with `digits` decimals.
  function decimalText(value, digits) {
    let s = String(value === null || value === undefined ? "0" : value).trim();
    const neg = s.startsWith("-"); if (neg || s.startsWith("+")) s = s.slice(1);
    let [int, frac = ""] = s.split(".");
    if (digits !== undefined) {
      if (frac.length > digits) {
        // Round half away from zero on the decimal digits (display only: the ledger already rounded).
        const keep = int + frac.slice(0, digits), next = Number(frac[digits]);
        let n = BigInt(keep || "0") + (next >= 5 ? 1n : 0n);
        const str = n.toString().padStart(digits + 1, "0");
        int = str.slice(0, str.length - digits) || "0"; frac = str.slice(str.length - digits);
      } else frac = frac.padEnd(digits, "0");
    }
    int = (int.replace(/^0+(?=\d)/, "") || "0").replace(/\B(?=(\d{3})+(?!\d))/g, group);
    const out = frac ? int + decimal + frac : int;
    return (neg && /[1-9]/.test(s) ? "−" : "") + out;
  }
  function number(n, digits) {
    if (n === null || n === undefined || Number.isNaN(Number(n))) return "—";
    return new Intl.NumberFormat(locale, { maximumFractionDigits: digits === undefined ? 0 : digits, minimumFractionDigits: digits === undefined ? 0 : digits }).format(Number(n));
  }
  // Where the locale puts the euro sign ("€24.64" in en-US, "24,64 €" in it-IT), with exact digits.
  const cur = new Intl.NumberFormat(locale, { style: "currency", currency: "EUR" }).formatToParts(1);
  const firstNum = cur.findIndex((p) => p.type === "integer");
  const lastNum = cur.length - 1 - [...cur].reverse().findIndex((p) => p.type === "integer" || p.type === "fraction");
  const eurPre = cur.slice(0, firstNum).map((p) => p.value).join("");
  const eurPost = cur.slice(lastNum + 1).map((p) => p.value).join("");
  function euro(value) {
    const t = decimalText(value, 2);
    return t.startsWith("−") ? "−" + eurPre + t.slice(1) + eurPost : eurPre + t + eurPost;
  }
  function logbit(value) { return decimalText(value) + " logbit"; }
  function percent(n) { return n === null || n === undefined ? "—" : number(n, 1) + " %"; }

  // Bytes in decimal units (1 KB = 1,000 bytes), as carriers bill them.
  function bytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let v = Number(n), i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return i === 0 ? number(v) + " bytes" : number(v, v < 10 ? 2 : 1) + " " + units[i];
  }
  function hours(seconds) { return number(Number(seconds) / 3600, 2) + " h"; }
  function celsius(n) { return n === null || n === undefined ? "—" : number(n, 1) + " °C"; }
  function dbm(n) { return n === null || n === undefined ? "—" : number(n) + " dBm"; }
  function duration(seconds) {
    const s = Math.max(0, Math.round(Number(seconds)));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
  }
  // A usage quantity in the unit the ledger counts: bytes, points or seconds (shown as hours).
  function usage(quantity, unit) {
    if (unit === "bytes") return bytes(quantity);
    if (unit === "seconds") return hours(quantity);
    if (unit === "points") return number(quantity) + " points";
    return number(quantity) + " " + unit;
  }
  const SERVICE = { data_ingestion: "Data ingestion", vpn: "VPN", sim: "SIM" };
  function service(code) { return SERVICE[code] || String(code).replaceAll("_", " "); }

  return { setZone, zone: () => zone, locale, dateTime, day, tick, decimalText, number, euro, logbit, percent, bytes, hours, celsius, dbm, duration, usage, service };
})();
