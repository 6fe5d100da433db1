// gitml ui: one page, no build step. Every view's state is in the URL (#/page?query).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, props = {}, ...kids) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const kid of kids.flat()) node.append(kid instanceof Node ? kid : String(kid ?? ""));
  return node;
};
const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(5)) : v ?? "");
const COLORS = ["#2f6fde", "#e8590c", "#12b886", "#be4bdb", "#f59f00", "#0c8599", "#e64980", "#5c940d"];

async function api(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const res = await fetch(`/api/${path}${query.size ? "?" + query : ""}`);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || body.detail || res.statusText);
  return body;
}

function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, ...rest] = path.split("/");
  return { page: page || "runs", arg: decodeURIComponent(rest.join("/")), params: new URLSearchParams(query) };
}
function go(page, params = {}, arg = "") {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  location.hash = `#/${page}${arg ? "/" + encodeURIComponent(arg) : ""}${query.size ? "?" + query : ""}`;
}

const pages = {};
let current = null; // {refresh()} of the page on screen

async function render() {
  const r = route();
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("on", a.dataset.page === r.page));
  const main = $("#page");
  main.replaceChildren();
  current = null;
  try {
    current = await (pages[r.page] || pages.runs)(main, r);
  } catch (err) {
    main.append(el("p", { className: "error" }, String(err.message || err)));
  }
}
window.addEventListener("hashchange", render);

// -- live: the server says when runs changed ------------------------------------------------
function listen() {
  const source = new EventSource("/api/events");
  source.onopen = () => $("#live").classList.add("on");
  source.onerror = () => $("#live").classList.remove("on");
  source.addEventListener("changed", () => current && current.refresh && current.refresh());
}

// -- runs table -------------------------------------------------------------------------------
const BASE = ["id", "name", "status", "start_time", "duration", "code.branch", "commit"];

pages.runs = async (main, r) => {
  const state = {
    where: r.params.get("where") || "", sort: r.params.get("sort") || "-start_time",
    group: r.params.get("group") || "", cols: r.params.get("cols") || "", all: r.params.get("all") === "1",
  };
  const picked = new Set((r.params.get("pick") || "").split(",").filter(Boolean));
  const setUrl = () => go("runs", { ...state, all: state.all ? "1" : "", pick: [...picked].join(",") });
  const input = el("input", { type: "text", value: state.where, placeholder: "filter: metrics.accuracy > 0.9 and params.model == 'rf'" });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { state.where = input.value.trim(); setUrl(); } });
  const fields = await api("fields");
  const groupSel = el("select", {}, el("option", { value: "" }, "group by…"),
    Object.keys(fields).filter((f) => f.startsWith("params.") || f === "code.branch" || f === "commit")
      .map((f) => el("option", { value: f, selected: f === state.group }, f)));
  groupSel.onchange = () => { state.group = groupSel.value; setUrl(); };
  const allBox = el("input", { type: "checkbox", checked: state.all });
  allBox.onchange = () => { state.all = allBox.checked; setUrl(); };
  const compareBtn = el("button", { disabled: picked.size < 1 }, `Compare (${picked.size})`);
  compareBtn.onclick = () => go("compare", { ids: [...picked].join(",") });
  const chooser = el("details", { className: "columns" }, el("summary", {}, "columns"));
  const count = el("span", { className: "count" });
  const error = el("div", { className: "error" });
  const groupsBox = el("div", { className: "groups" });
  main.append(el("div", { className: "bar" }, input, groupSel, el("label", {}, allBox, " all params"), chooser, compareBtn, count), error, groupsBox);

  let first;
  try {
    first = await api("runs", { where: state.where, sort: state.sort, limit: 1, group: state.group });
  } catch (err) { error.textContent = err.message; return { refresh: render }; }
  const differ = new Set(first.differ);
  let columns = state.cols ? state.cols.split(",") : first.columns.filter((c) => !c.startsWith("params.") || state.all || differ.has(c));
  if (!state.cols) for (const c of BASE) if (fields[c] && !columns.includes(c)) columns.splice(BASE.indexOf(c), 0, c);
  columns = [...new Set(["id", ...columns])];
  const list = el("div", { className: "list" }, Object.keys(fields).sort().map((f) => {
    const box = el("input", { type: "checkbox", checked: columns.includes(f) });
    box.onchange = () => { state.cols = (box.checked ? [...columns, f] : columns.filter((c) => c !== f)).join(","); setUrl(); };
    return el("label", { style: "display:block" }, box, " ", f, el("span", { className: "muted" }, ` (${fields[f]})`));
  }));
  chooser.append(list);
  if (first.groups) {
    groupsBox.append(...first.groups.slice(0, 50).map((g) => {
      const b = el("button", {}, `${fmt(g.value)} · ${g.runs}`);
      b.onclick = () => { state.where = [state.where, `${state.group} == ${JSON.stringify(g.value)}`].filter(Boolean).join(" and "); state.group = ""; setUrl(); };
      return b;
    }));
  }

  const table = el("div", { className: "table" });
  const template = `28px repeat(${columns.length}, minmax(8em, 1fr))`;
  const head = el("div", { className: "head", style: `grid-template-columns:${template}` }, el("div", { className: "cell" }, ""),
    columns.map((c) => {
      const arrow = state.sort === c ? " ▲" : state.sort === "-" + c ? " ▼" : "";
      const cell = el("div", { className: "cell", title: c }, c + arrow);
      cell.onclick = () => { state.sort = state.sort === "-" + c ? c : "-" + c; setUrl(); };
      return cell;
    }));
  const body = el("div", { className: "rows" });
  table.append(head, body);
  main.append(table);

  const ROW = 28, PAGE = 200;
  let total = first.total, cache = new Map(), pending = new Set();
  const fetchPage = async (n) => {
    if (cache.has(n) || pending.has(n)) return;
    pending.add(n);
    try {
      const page = await api("runs", { where: state.where, sort: state.sort, offset: n * PAGE, limit: PAGE, columns: columns.join(",") });
      total = page.total; cache.set(n, page.rows);
      count.textContent = `${total.toLocaleString()} of ${page.runs.toLocaleString()} runs`;
    } finally { pending.delete(n); }
    draw();
  };
  const draw = () => {
    body.style.height = `${total * ROW}px`;
    const top = Math.max(0, Math.floor((table.scrollTop - ROW) / ROW));
    const bottom = Math.min(total, top + Math.ceil(table.clientHeight / ROW) + 2);
    const nodes = [];
    for (let i = top; i < bottom; i++) {
      const rows = cache.get(Math.floor(i / PAGE));
      if (!rows) { fetchPage(Math.floor(i / PAGE)); continue; }
      const row = rows[i % PAGE];
      if (!row) continue;
      const pick = el("input", { type: "checkbox", checked: picked.has(row.id) });
      pick.onchange = () => { pick.checked ? picked.add(row.id) : picked.delete(row.id); compareBtn.disabled = !picked.size; compareBtn.textContent = `Compare (${picked.size})`; };
      const line = el("div", { className: "row" + (picked.has(row.id) ? " picked" : ""), style: `top:${i * ROW}px;grid-template-columns:${template}` },
        el("div", { className: "cell" }, pick),
        columns.map((c) => {
          const cell = el("div", { className: "cell" + (c === "status" ? ` status-${row[c]}` : ""), title: String(row[c] ?? "") }, fmt(row[c]));
          if (c === "id") { cell.append(); cell.replaceChildren(el("a", { href: `#/run/${encodeURIComponent(row.id)}` }, row.id)); }
          return cell;
        }));
      line.dataset.run = row.id;
      nodes.push(line);
    }
    body.replaceChildren(...nodes);
  };
  table.addEventListener("scroll", () => requestAnimationFrame(draw));
  await fetchPage(0);
  return { refresh: async () => { cache = new Map(); await fetchPage(Math.floor(table.scrollTop / ROW / PAGE)); } };
};

// -- one run ----------------------------------------------------------------------------------
function kv(obj, differs = new Set()) {
  return el("table", { className: "kv" }, Object.entries(obj || {}).map(([k, v]) =>
    el("tr", {}, el("th", {}, k), el("td", { className: differs.has(k) ? "differs" : "" }, typeof v === "object" && v ? JSON.stringify(v) : fmt(v)))));
}
function tree(node) {
  if (!node || typeof node !== "object") return el("span", {}, fmt(node));
  return el("ul", { className: "tree" }, Object.entries(node).map(([k, v]) =>
    el("li", {}, el("b", {}, k), ": ", typeof v === "object" && v !== null ? tree(v) : fmt(v))));
}

pages.run = async (main, r) => {
  const run = await api(`run/${encodeURIComponent(r.arg)}`);
  const rec = run.record;
  main.append(el("h2", {}, `${rec.name || "run"} `, el("span", { className: `status-${rec.status}` }, rec.status), el("span", { className: "muted" }, ` · ${rec.id}`)));
  const btn = el("button", {}, "Compare with…");
  btn.onclick = () => go("runs", { pick: rec.id });
  main.append(el("p", { className: "muted" }, `landed in ${run.commit ? run.commit.slice(0, 12) : "the working tree (not committed)"}; code ${rec.code?.commit?.slice(0, 12) || "?"}${rec.code?.dirty ? " + patch" : ""}; started ${rec.start_time}`, " ", btn));
  if (rec.command) main.append(el("pre", {}, rec.command.join(" ")));
  main.append(el("h3", {}, "Metrics"), kv(rec.metrics), el("h3", {}, "Params"), kv(rec.params), el("h3", {}, "Tags"), kv(rec.tags));
  const charts = el("div", { className: "charts" });
  if (run.series.length) main.append(el("h3", {}, "Step metrics"), charts);
  for (const name of run.series) charts.append(await chart([{ run: rec.id, label: rec.id }], name, { width: 420, height: 220 }));
  const files = (section) => Object.fromEntries(Object.entries(rec[section] || {}).map(([p, a]) => [p, `md5 ${a.md5.slice(0, 12)}, ${a.size.toLocaleString()} bytes`]));
  main.append(el("h3", {}, "Inputs"), kv(files("inputs")), el("h3", {}, "Outputs"), kv(files("outputs")));
  main.append(el("h3", {}, "Lineage"), run.lineage ? tree(run.lineage) : el("p", { className: "muted" }, run.lineage_error || ""));
  main.append(el("h3", {}, "Environment"), kv({ python: rec.env?.python, platform: rec.env?.platform, gitml: rec.env?.gitml }));
  if (rec.env?.packages) main.append(el("details", {}, el("summary", {}, `${Object.keys(rec.env.packages).length} packages`), kv(rec.env.packages)));
  if (run.patch) main.append(el("h3", {}, "Code patch (uncommitted changes it ran with)"), el("pre", {}, run.patch));
  return { refresh: render };
};

// -- charts -----------------------------------------------------------------------------------
function smooth(ys, weight) {
  if (!weight) return ys;
  let last = null;
  return ys.map((y) => (y == null ? null : (last = last == null ? y : last * weight + y * (1 - weight))));
}

async function chart(runs, name, opts = {}) {
  const { width = 900, height = 360, log = false, weight = 0, x = "step" } = opts;
  const box = el("div", { className: "chart" });
  const fetchAll = (x0, x1) => Promise.all(runs.map((r) => api("series", { run: r.run, name, buckets: width, x, x0, x1 })));
  let data = await fetchAll();
  const build = (all) => {
    const xs = [...new Set(all.flatMap((s) => s.x))].sort((a, b) => a - b);
    const at = (s, key) => { const m = new Map(s.x.map((v, i) => [v, s[key][i]])); return xs.map((v) => (m.has(v) ? m.get(v) : null)); };
    const series = [{}], cols = [xs];
    all.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      cols.push(smooth(at(s, "y"), weight));
      series.push({ label: runs[i].label, stroke: color, spanGaps: true, width: 1.5 });
      if (s.downsampled) {
        cols.push(at(s, "min"), at(s, "max"));
        series.push({ label: `${runs[i].label} min`, stroke: color + "55", width: 1, spanGaps: true },
                    { label: `${runs[i].label} max`, stroke: color + "55", width: 1, spanGaps: true });
      }
    });
    return { cols, series };
  };
  let { cols, series } = build(data);
  const plot = new uPlot({
    title: name, width, height, series,
    scales: { x: { time: x === "time" }, y: { distr: log ? 3 : 1 } },
    hooks: { setSelect: [async (u) => {   // zoom: fetch the raw data of the window
      if (u.select.width < 5) return;
      const x0 = u.posToVal(u.select.left, "x"), x1 = u.posToVal(u.select.left + u.select.width, "x");
      data = await fetchAll(x0, x1);
      ({ cols } = build(data));
      u.setData(cols);
    }] },
  }, cols, box);
  box.dataset.points = data.map((s) => s.points).join(",");
  box.dataset.drawn = data.map((s) => s.x.length).join(",");
  box.plot = plot;
  return box;
}

// -- compare ------------------------------------------------------------------------------------
pages.compare = async (main, r) => {
  const ids = (r.params.get("ids") || "").split(",").filter(Boolean);
  if (!ids.length) { main.append(el("p", {}, "Pick runs in the ", el("a", { href: "#/runs" }, "runs table"), " and press Compare.")); return null; }
  const cmp = await api("compare", { ids: ids.join(",") });
  const p = r.params, metric = p.get("metric") || cmp.series[0] || "";
  const set = (k, v) => { const q = Object.fromEntries(p); q[k] = v; go("compare", q); };
  const metricSel = el("select", {}, cmp.series.map((s) => el("option", { value: s, selected: s === metric }, s)));
  metricSel.onchange = () => set("metric", metricSel.value);
  const logBox = el("input", { type: "checkbox", checked: p.get("log") === "1" });
  logBox.onchange = () => set("log", logBox.checked ? "1" : "");
  const smoothIn = el("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: p.get("smooth") || 0 });
  smoothIn.onchange = () => set("smooth", smoothIn.value);
  const xSel = el("select", {}, ["step", "time"].map((v) => el("option", { value: v, selected: (p.get("x") || "step") === v }, `x: ${v}`)));
  xSel.onchange = () => set("x", xSel.value);
  main.append(el("h2", {}, `Compare ${ids.length} runs`), el("div", { className: "bar" }, metricSel, xSel, el("label", {}, logBox, " log"), el("label", {}, "smoothing ", smoothIn)));
  if (metric) main.append(await chart(cmp.runs.map((row) => ({ run: row.id, label: row.name ? `${row.name} ${row.id.slice(-6)}` : row.id })), metric,
    { log: p.get("log") === "1", weight: Number(p.get("smooth") || 0), x: p.get("x") || "step" }));
  const differs = new Set(cmp.fields.filter((f) => f.differs).map((f) => f.name));
  const only = p.get("all") !== "1";
  const rows = cmp.fields.filter((f) => !only || f.differs || f.name.startsWith("metrics."));
  const allBox = el("input", { type: "checkbox", checked: !only });
  allBox.onchange = () => set("all", allBox.checked ? "1" : "");
  main.append(el("h3", {}, "Params and metrics ", el("label", { className: "muted" }, allBox, " show the ones that are the same")));
  main.append(el("table", { className: "kv", id: "diff" },
    el("tr", {}, el("th", {}, ""), cmp.runs.map((row) => el("th", {}, el("a", { href: `#/run/${row.id}` }, row.id)))),
    rows.map((f) => el("tr", {}, el("th", {}, f.name), cmp.runs.map((row) => el("td", { className: differs.has(f.name) ? "differs" : "" }, fmt(row[f.name])))))));
  main.append(el("h3", {}, "Params against metrics"), parallel(cmp.runs, cmp.fields.map((f) => f.name).filter((n) => differs.has(n) || n.startsWith("metrics."))));
  return { refresh: render };
};

function parallel(runs, axes) {
  // Parallel coordinates in SVG: one vertical axis per numeric param/metric, one line per run.
  const numeric = axes.filter((a) => runs.some((r) => typeof r[a] === "number"));
  const W = Math.max(300, numeric.length * 140), H = 240, pad = 30;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H + 40); svg.id = "parallel";
  const add = (tag, attrs, text) => { const n = document.createElementNS(svg.namespaceURI, tag); for (const k in attrs) n.setAttribute(k, attrs[k]); if (text) n.textContent = text; svg.append(n); return n; };
  const xOf = (i) => pad + (i * (W - 2 * pad)) / Math.max(1, numeric.length - 1);
  const range = numeric.map((a) => { const v = runs.map((r) => r[a]).filter((x) => typeof x === "number"); return [Math.min(...v), Math.max(...v)]; });
  const yOf = (i, v) => { const [lo, hi] = range[i]; return H - ((v - lo) / (hi - lo || 1)) * (H - 2 * pad) - pad; };
  numeric.forEach((a, i) => { add("line", { x1: xOf(i), x2: xOf(i), y1: pad, y2: H - pad, stroke: "#98a2b3" }); add("text", { x: xOf(i), y: H + 15, "text-anchor": "middle", "font-size": 11 }, a); });
  runs.forEach((r, j) => {
    const pts = numeric.map((a, i) => (typeof r[a] === "number" ? `${xOf(i)},${yOf(i, r[a])}` : null)).filter(Boolean);
    add("polyline", { points: pts.join(" "), fill: "none", stroke: COLORS[j % COLORS.length], "stroke-width": 2 });
  });
  return svg;
}

// -- a metric over a branch's history -------------------------------------------------------------
pages.history = async (main, r) => {
  const p = r.params, ref = p.get("ref") || "HEAD";
  const fields = await api("fields");
  const metrics = Object.keys(fields).filter((f) => f.startsWith("metrics."));
  const metric = p.get("metric") || metrics[0] || "";
  const refIn = el("input", { type: "text", value: ref, style: "max-width:14em" });
  const metricSel = el("select", {}, metrics.map((m) => el("option", { value: m, selected: m === metric }, m)));
  const apply = () => go("history", { ref: refIn.value.trim(), metric: metricSel.value });
  refIn.onkeydown = (e) => e.key === "Enter" && apply();
  metricSel.onchange = apply;
  main.append(el("h2", {}, "Over history"), el("div", { className: "bar" }, "branch or commit", refIn, metricSel));
  if (!metric) { main.append(el("p", { className: "muted" }, "No run has a metric yet.")); return { refresh: render }; }
  const h = await api("history", { ref, metric });
  const xs = [], best = [], each = [];
  h.commits.forEach((c, i) => {
    const vals = c.values.map((v) => v.value).filter((v) => typeof v === "number");
    xs.push(i);
    best.push(vals.length ? (h.goal === "minimize" ? Math.min(...vals) : Math.max(...vals)) : null);
    each.push(vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null);
  });
  const box = el("div", { className: "chart", id: "history-chart" });
  main.append(box);
  new uPlot({
    title: `${h.metric} along ${ref} (first-parent commits, oldest first)`, width: 900, height: 320,
    scales: { x: { time: false } },
    axes: [{ values: (u, ticks) => ticks.map((t) => (h.commits[t] ? h.commits[t].commit.slice(0, 7) : "")) }, {}],
    series: [{}, { label: h.goal === "minimize" ? "best (lowest)" : "best (highest)", stroke: COLORS[0], spanGaps: true, points: { show: true } },
             { label: "mean of the commit's runs", stroke: COLORS[1], spanGaps: true, points: { show: true } }],
  }, [xs, best, each], box);
  box.dataset.commits = String(h.commits.length);
  box.dataset.points = String(best.filter((v) => v != null).length);
  main.append(el("table", { className: "kv" }, h.commits.slice().reverse().filter((c) => c.values.length).map((c) =>
    el("tr", {}, el("th", {}, c.commit.slice(0, 10)), el("td", {}, c.subject), el("td", {}, c.values.map((v) => fmt(v.value)).join(", "))))));
  return { refresh: render };
};

listen();
render();
