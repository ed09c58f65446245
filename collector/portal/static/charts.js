// Logbot portal charts: uPlot (vendored, vendor/uplot/) for time series and daily bars,
// inline SVG for the room timelines. Every chart is a role="img" figure with a text
// label that says what it shows, and a legend of its series with their units.
"use strict";

const Charts = (() => {
  const COLORS = ["#0b5cad", "#b35900", "#116329", "#8250df", "#a40e26"];
  const SVGNS = "http://www.w3.org/2000/svg";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function figure(label, title, series) {
    const fig = el("figure", "chart");
    fig.setAttribute("role", "img");
    fig.setAttribute("aria-label", label);
    fig.append(el("figcaption", "chart-title", title));
    const plot = el("div", "chart-plot");
    fig.append(plot);
    const legend = el("ul", "chart-legend");
    series.forEach((s, i) => {
      const li = el("li", null);
      const sw = el("span", "swatch swatch-" + (i % COLORS.length));
      li.append(sw, document.createTextNode(s.label));
      legend.append(li);
    });
    fig.append(legend);
    return { fig, plot };
  }

  function width() {
    const main = document.getElementById("main");
    return Math.max(280, Math.min(880, (main ? main.clientWidth : 800) - 40));
  }

  // Lines over time. xs: seconds since the epoch; series: [{label, values}]; fmt: value -> text.
  function lines(title, label, xs, series, fmt, opts) {
    const { fig, plot } = figure(label, title, series);
    const u = new uPlot({
      width: width(), height: (opts && opts.height) || 180, legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      // One sample alone gets an hour either side instead of a meaningless span.
      scales: { x: { time: true, range: (self, min, max) => (min === max ? [min - 3600, max + 3600] : [min, max]) }, y: opts && opts.range ? { range: opts.range } : { auto: true } },
      axes: [
        { values: (self, ticks) => ticks.map(Fmt.tick), size: 44, space: 110 },
        { values: (self, ticks) => ticks.map(fmt), size: 80 },
      ],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false, value: (self, v) => (v === null ? "—" : fmt(v)),
        paths: opts && opts.step && uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined }))],
    }, [xs, ...series.map((s) => s.values)], plot);
    fig.uplot = u;
    return fig;
  }

  // Bars per day. days: ["YYYY-MM-DD"]; series: [{label, values}]; fmt: value -> text.
  function dailyBars(title, label, days, series, fmt) {
    const { fig, plot } = figure(label, title, series);
    const xs = days.map((d) => Date.parse(d + "T12:00:00Z") / 1000);
    const n = Math.max(1, series.length);
    const bars = uPlot.paths && uPlot.paths.bars;
    new uPlot({
      width: width(), height: 200, legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => [xs[0] - 43200, xs[xs.length - 1] + 43200] }, y: { auto: true, range: (self, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { values: (self, ticks) => ticks.map((t) => Fmt.day(new Date(t * 1000).toISOString().slice(0, 10))), size: 40, space: 70 },
        { values: (self, ticks) => ticks.map(fmt), size: 90 },
      ],
      series: [{}, ...series.map((s, i) => ({
        label: s.label, stroke: COLORS[i % COLORS.length], fill: COLORS[i % COLORS.length], width: 1,
        paths: bars ? bars({ size: [0.6 / n, 60], align: 0, gap: 1 }) : undefined,
        points: { show: false },
      }))],
    }, [xs, ...series.map((s) => s.values)], plot);
    return fig;
  }

  // One bar per category (e.g. services of a month). categories: [text]; values: [number].
  function categoryBars(title, label, categories, values, fmt) {
    const { fig, plot } = figure(label, title, [{ label: title }]);
    const xs = categories.map((c, i) => i);
    const bars = uPlot.paths && uPlot.paths.bars;
    new uPlot({
      width: width(), height: 200, legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: () => [-0.6, categories.length - 0.4] }, y: { auto: true, range: (self, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        { splits: () => xs, values: (self, ticks) => ticks.map((t) => categories[t] || ""), size: 40 },
        { values: (self, ticks) => ticks.map(fmt), size: 100 },
      ],
      series: [{}, { label: title, stroke: COLORS[0], fill: COLORS[0], width: 1, paths: bars ? bars({ size: [0.6, 80] }) : undefined, points: { show: false } }],
    }, [xs, values], plot);
    return fig;
  }

  // A room's states over time as a strip: segments [{start, end, state}] between since and until.
  function timeline(label, segments, since, until) {
    const w = 600, h = 18;
    const t0 = Date.parse(since), t1 = Date.parse(until), span = Math.max(1, t1 - t0);
    const svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("class", "timeline");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    svg.setAttribute("preserveAspectRatio", "none");
    for (const s of segments) {
      const a = Math.max(t0, Date.parse(s.start)), b = Math.min(t1, Date.parse(s.end));
      const r = document.createElementNS(SVGNS, "rect");
      r.setAttribute("x", ((a - t0) / span) * w);
      r.setAttribute("width", Math.max(1, ((b - a) / span) * w));
      r.setAttribute("y", 0); r.setAttribute("height", h);
      r.setAttribute("class", "seg-" + s.state);
      const t = document.createElementNS(SVGNS, "title");
      t.textContent = `${s.state.replace("_", " ")}: ${Fmt.dateTime(s.start)} – ${Fmt.dateTime(s.end)}`;
      r.append(t); svg.append(r);
    }
    return svg;
  }

  return { lines, dailyBars, categoryBars, timeline };
})();
