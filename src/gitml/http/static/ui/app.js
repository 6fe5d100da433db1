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

// A static export (`gitml ui --export DIR`) has the answers as files: api/*.json.
const EXPORTED = window.GITML_EXPORT === true;
const safe = (name) => [...name].map((c) => (/[\p{L}\p{N}._-]/u.test(c) ? c : `~${c.codePointAt(0).toString(16)}~`)).join("");
const files = {};
const file = (path) => (files[path] ||= fetch(path).then((r) => { if (!r.ok) throw new Error(`${path}: ${r.status}`); return r.json(); }));

async function offline(path, params) {
  const [kind, ...rest] = path.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  if (kind === "fields") return file("api/fields.json");
  if (kind === "run") return file(`api/run/${arg}.json`);
  if (kind === "series") return file(`api/series/${params.run}/${safe(params.name)}.json`);
  if (kind === "history") return file(`api/history/${safe(params.metric.startsWith("metrics.") ? params.metric : "metrics." + params.metric)}.json`);
  if (kind === "models") return file("api/models.json");
  if (kind === "check" && !params.rev) return file("api/check.json");
  if (kind === "model") return file(`api/model/${safe(arg)}.json`);
  const rows = await file("api/rows.json");
  if (kind === "runs") {
    if (params.where) throw new Error("filtering needs `gitml ui`: this page is a static export");
    const desc = (params.sort || "-start_time").startsWith("-"), key = (params.sort || "-start_time").replace(/^-/, "");
    const cmp = (a, b) => (a[key] == null) - (b[key] == null) || (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0) * (desc ? -1 : 1);
    const sorted = rows.slice().sort(cmp);
    const differ = [...new Set(rows.flatMap(Object.keys))].filter((k) => k.startsWith("params.") && new Set(rows.map((r) => JSON.stringify(r[k] ?? null))).size > 1);
    const columns = params.columns ? params.columns.split(",") : [...new Set(rows.flatMap(Object.keys))].filter((k) => BASE.includes(k) || k.startsWith("metrics.") || k.startsWith("params."));
    const offset = Number(params.offset || 0), limit = Number(params.limit || 100);
    const out = { total: rows.length, runs: rows.length, offset, columns, differ,
                  rows: sorted.slice(offset, offset + limit).map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null]))) };
    if (params.group) {
      const counts = new Map();
      for (const r of rows) counts.set(JSON.stringify(r[params.group] ?? null), (counts.get(JSON.stringify(r[params.group] ?? null)) || 0) + 1);
      out.groups = [...counts].sort((a, b) => b[1] - a[1]).map(([v, n]) => ({ value: JSON.parse(v), runs: n }));
    }
    return out;
  }
  if (kind === "compare") {
    const ids = params.ids.split(","), picked = ids.map((id) => rows.find((r) => r.id === id)).filter(Boolean);
    const keys = [...new Set(picked.flatMap(Object.keys))].filter((k) => k.startsWith("params.") || k.startsWith("metrics.")).sort();
    const pages = await Promise.all(picked.map((r) => file(`api/run/${r.id}.json`)));
    return { runs: picked, series: [...new Set(pages.flatMap((p) => p.series))],
             fields: keys.map((k) => ({ name: k, differs: new Set(picked.map((r) => JSON.stringify(r[k] ?? null))).size > 1 })), seed_params: [] };
  }
  throw new Error(`${kind} needs \`gitml ui\`: this page is a static export`);
}

async function api(path, params = {}) {
  if (EXPORTED) return offline(path, params);
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
  if (EXPORTED) { $("#live").textContent = "static export"; return; }
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
    Object.keys(fields).filter((f) => f.startsWith("params.") || f.startsWith("tags.") || f === "code.branch" || f === "commit")
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
// Lineage, upstream: the run, the inputs it read, the runs that made them, and so on.
function lineage(node) {
  if (!node) return el("span", {}, "");
  if ("artifact" in node) {
    const made = node.produced_by ? lineage(node.produced_by) : el("span", { className: "muted" }, "raw data: no run produced these bytes");
    return el("li", {}, el("span", { className: "art" }, node.artifact), el("span", { className: "muted" }, ` md5 ${(node.md5 || "missing").slice(0, 12)}`),
      node.note ? el("span", { className: "muted" }, ` [${node.note}]`) : "", el("ul", { className: "tree" }, el("li", {}, "made by ", made)));
  }
  const label = el("span", {}, el("a", { href: `#/run/${encodeURIComponent(node.run)}` }, node.name || node.run), " ",
    el("span", { className: `status-${node.status}` }, node.status || ""), el("span", { className: "muted" }, ` code ${(node.code?.commit || "?").slice(0, 8)}${node.code?.dirty ? " + patch" : ""}`));
  if (node.repeated) return el("span", {}, label, el("span", { className: "muted" }, " (shown above)"));
  if (node.deeper) return el("span", {}, label, el("span", { className: "muted" }, ` (deeper: gitml lineage ${node.run})`));
  return el("span", { className: "lineage-run" }, label, el("ul", { className: "tree" },
    node.inputs.length ? node.inputs.map(lineage) : el("li", { className: "muted" }, "inputs: none recorded")));
}

// Downstream: the runs that read this run's outputs, the model versions made from it.
function usedBy(down) {
  const items = [
    ...down.runs.map((d) => el("li", {}, `${d.output} → read by run `, el("a", { href: `#/run/${encodeURIComponent(d.run)}` }, d.name || d.run), " ", el("span", { className: `status-${d.status}` }, d.status || ""))),
    ...down.versions.map((v) => el("li", {}, `${v.path} → registered as `, el("a", { href: `#/model/${encodeURIComponent(v.model)}` }, `${v.model} v${v.version}`), v.aliases.length ? ` (@${v.aliases.join(", @")})` : "")),
  ];
  return items.length ? el("ul", { className: "used-by" }, items) : el("p", { className: "muted" }, "no run read its outputs; no model version was made from it");
}

function reproduced(verdict) {
  if (!verdict) return el("p", { className: "muted", id: "reproduced" }, "never reproduced here: `gitml reproduce <run>` re-runs it from its code and data and records the verdict");
  const good = verdict.verdict === "reproduced";
  return el("p", { id: "reproduced" }, el("span", { className: good ? "better" : "worse" }, verdict.verdict),
    ` on ${verdict.created_at}: ${verdict.compared} compared`, verdict.differ.length ? `, differ: ${verdict.differ.join(", ")}` : "",
    verdict.reason ? el("span", { className: "muted" }, ` (${verdict.reason})`) : "");
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
  charts.append(...await Promise.all(run.series.map((name) => chart([{ run: rec.id, label: rec.id }], name, { width: 420, height: 220 }))));
  const files = (section) => Object.fromEntries(Object.entries(rec[section] || {}).map(([p, a]) => [p, `md5 ${a.md5.slice(0, 12)}, ${a.size.toLocaleString()} bytes`]));
  main.append(el("h3", {}, "Inputs"), kv(files("inputs")), el("h3", {}, "Outputs"), kv(files("outputs")));
  main.append(el("h3", {}, "Reproduced?"), reproduced(run.reproduced));
  main.append(el("h3", {}, "Lineage: what it was made from"),
    run.lineage ? el("ul", { className: "tree lineage" }, el("li", {}, lineage(run.lineage))) : el("p", { className: "muted" }, run.lineage_error || ""));
  main.append(el("h3", {}, "Used by: what was made from it"), usedBy(run.downstream));
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
  const bandBox = el("input", { type: "checkbox", checked: p.get("band") === "1" });
  bandBox.onchange = () => set("band", bandBox.checked ? "1" : "");
  main.querySelector(".bar").append(el("label", { title: "runs whose params differ only in a seed" }, bandBox, " repeats as mean ± std"));
  const repeats = seedGroups(cmp.runs, cmp.seed_params || []);
  if (metric && p.get("band") === "1" && repeats.some((g) => g.length > 1)) {
    main.append(await bandChart(repeats, metric, { log: p.get("log") === "1" }));
  } else if (metric) {
    main.append(await chart(cmp.runs.map((row) => ({ run: row.id, label: row.name ? `${row.name} ${row.id.slice(-6)}` : row.id })), metric,
      { log: p.get("log") === "1", weight: Number(p.get("smooth") || 0), x: p.get("x") || "step" }));
  }
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
  const numeric = (prefix) => cmp.fields.map((f) => f.name).filter((n) => n.startsWith(prefix) && cmp.runs.some((row) => typeof row[n] === "number"));
  const params = numeric("params.").filter((n) => differs.has(n)), metrics = numeric("metrics.");
  if (params.length && metrics.length) {
    const px = p.get("sx") || params[0], my = p.get("sy") || metrics[0];
    const sx = el("select", {}, params.map((n) => el("option", { value: n, selected: n === px }, n)));
    const sy = el("select", {}, metrics.map((n) => el("option", { value: n, selected: n === my }, n)));
    sx.onchange = () => set("sx", sx.value); sy.onchange = () => set("sy", sy.value);
    main.append(el("h3", {}, "One param against one metric"), el("div", { className: "bar" }, sx, "→", sy), scatter(cmp.runs, px, my));
  }
  return { refresh: render };
};

function scatter(runs, xKey, yKey) {
  const pts = runs.filter((r) => typeof r[xKey] === "number" && typeof r[yKey] === "number");
  const W = 420, H = 260, pad = 40;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.id = "scatter";
  const add = (tag, attrs, text) => { const n = document.createElementNS(svg.namespaceURI, tag); for (const k in attrs) n.setAttribute(k, attrs[k]); if (text != null) n.textContent = text; svg.append(n); return n; };
  const span = (k) => { const v = pts.map((r) => r[k]); const lo = Math.min(...v), hi = Math.max(...v); return [lo, hi - lo || 1]; };
  const [x0, xw] = span(xKey), [y0, yw] = span(yKey);
  add("line", { x1: pad, y1: H - pad, x2: W - 10, y2: H - pad, stroke: "#98a2b3" });
  add("line", { x1: pad, y1: 10, x2: pad, y2: H - pad, stroke: "#98a2b3" });
  add("text", { x: W / 2, y: H - 8, "text-anchor": "middle", "font-size": 11 }, xKey);
  add("text", { x: 12, y: H / 2, "font-size": 11, transform: `rotate(-90 12 ${H / 2})`, "text-anchor": "middle" }, yKey);
  pts.forEach((r, j) => {
    const c = add("circle", { cx: pad + ((r[xKey] - x0) / xw) * (W - pad - 20), cy: H - pad - ((r[yKey] - y0) / yw) * (H - pad - 20), r: 5, fill: COLORS[j % COLORS.length] });
    add("title", {}, `${r.id}: ${xKey}=${fmt(r[xKey])}, ${yKey}=${fmt(r[yKey])}`).remove();
    c.append(Object.assign(document.createElementNS(svg.namespaceURI, "title"), { textContent: `${r.id}: ${fmt(r[xKey])}, ${fmt(r[yKey])}` }));
  });
  return svg;
}

// Runs that differ only in a seed param (`[tracking] seed_params`, as `gitml diff` reads it)
// are repeats of one experiment.
function seedGroups(runs, seedParams) {
  const isSeed = (k) => seedParams.includes(k);
  const groups = new Map();
  for (const row of runs) {
    const key = JSON.stringify(Object.keys(row).filter((k) => k.startsWith("params.") && !isSeed(k)).sort().map((k) => [k, row[k]]));
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  }
  return [...groups.values()];
}

async function bandChart(groups, name, opts = {}) {
  const { width = 900, height = 360, log = false } = opts;
  const box = el("div", { className: "chart", id: "band-chart" });
  const drawn = await Promise.all(groups.map((g) => (g.length > 1
    ? api("band", { ids: g.map((r) => r.id).join(","), name, buckets: width })
    : api("series", { run: g[0].id, name, buckets: width }).then((s) => ({ x: s.x, mean: s.y, low: s.y, high: s.y, runs: 1 })))));
  const xs = [...new Set(drawn.flatMap((d) => d.x))].sort((a, b) => a - b);
  const at = (d, key) => { const m = new Map(d.x.map((v, i) => [v, d[key][i]])); return xs.map((v) => (m.has(v) ? m.get(v) : null)); };
  const cols = [xs], series = [{}], bands = [];
  drawn.forEach((d, i) => {
    const color = COLORS[i % COLORS.length], label = `${groups[i].length} run${groups[i].length > 1 ? "s" : ""}: ${groups[i][0].id.slice(-6)}…`;
    cols.push(at(d, "mean"), at(d, "high"), at(d, "low"));
    const base = series.length;
    series.push({ label: `${label} mean`, stroke: color, width: 2, spanGaps: true },
                { label: "+std", stroke: color + "66", width: 1, spanGaps: true },
                { label: "−std", stroke: color + "66", width: 1, spanGaps: true });
    bands.push({ series: [base + 1, base + 2], fill: color + "22" });
  });
  new uPlot({ title: `${name}: mean ± std of repeats`, width, height, series, bands, scales: { x: { time: false }, y: { distr: log ? 3 : 1 } } }, cols, box);
  box.dataset.groups = String(groups.length);
  box.dataset.repeated = drawn.map((d) => d.runs).join(",");
  return box;
}

function parallel(runs, axes) {
  // Parallel coordinates in SVG: one vertical axis per numeric param/metric, one line per run.
  const numeric = axes.filter((a) => runs.some((r) => typeof r[a] === "number"));
  const W = Math.max(300, numeric.length * 140 + 60), H = 240, pad = 60;
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
    axes: [{ incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
             values: (u, ticks) => ticks.map((t) => (h.commits[t] ? h.commits[t].commit.slice(0, 7) : "")) }, {}],
    series: [{}, { label: h.goal === "minimize" ? "best (lowest)" : "best (highest)", stroke: COLORS[0], spanGaps: true, points: { show: true } },
             { label: "mean of the commit's runs", stroke: COLORS[1], spanGaps: true, points: { show: true } }],
  }, [xs, best, each], box);
  box.dataset.commits = String(h.commits.length);
  box.dataset.points = String(best.filter((v) => v != null).length);
  main.append(el("table", { className: "kv" }, h.commits.slice().reverse().filter((c) => c.values.length).map((c) =>
    el("tr", {}, el("th", {}, c.commit.slice(0, 10)), el("td", {}, c.subject), el("td", {}, c.values.map((v) => fmt(v.value)).join(", "))))));
  return { refresh: render };
};

// -- two refs side by side: the `gitml diff` of a pull request -----------------------------------
pages.diff = async (main, r) => {
  const a = r.params.get("a") || "HEAD~1", b = r.params.get("b") || "HEAD";
  const aIn = el("input", { type: "text", value: a, style: "max-width:14em" });
  const bIn = el("input", { type: "text", value: b, style: "max-width:14em" });
  const apply = () => go("diff", { a: aIn.value.trim(), b: bIn.value.trim() });
  [aIn, bIn].forEach((i) => (i.onkeydown = (e) => e.key === "Enter" && apply()));
  main.append(el("h2", {}, "Two refs side by side"), el("div", { className: "bar" }, "base", aIn, "head", bIn, el("button", { onclick: apply }, "Compare")));
  const d = await api("diff", { a, b });
  const section = (title, rows, key) => {
    if (!rows || !rows.length) return [];
    return [el("h3", {}, title), el("table", { className: "kv", id: `diff-${key}` },
      el("tr", {}, el("th", {}, key), el("th", {}, a), el("th", {}, b), el("th", {}, "change")),
      rows.map((c) => el("tr", {}, el("th", {}, c[key]), el("td", {}, fmt(c.a ?? c.a_mean)), el("td", {}, fmt(c.b ?? c.b_mean)),
        el("td", { className: c.verdict === "better" ? "better" : c.verdict === "worse" ? "worse" : "" },
          [c.change != null ? (c.change > 0 ? "+" : "") + fmt(c.change) : "", c.relative != null ? `(${(100 * c.relative).toFixed(1)}%)` : "", c.verdict || ""].filter(Boolean).join(" ")))))];
  };
  main.append(el("p", { className: "muted" }, `${a}: run ${d.a.run || "none"} · ${b}: run ${d.b.run || "none"}`));
  main.append(...section("Metrics", d.metrics, "metric"), ...section("Params", d.params, "param"), ...section("Data", d.data, "path"));
  main.append(el("p", { className: "muted" }, `code ${(d.code.a || "?").slice(0, 10)} → ${(d.code.b || "?").slice(0, 10)}`));
  return { refresh: render };
};

// -- registry and monitoring ----------------------------------------------------------------------
pages.models = async (main) => {
  const models = await api("models");
  main.append(el("h2", {}, "Registered models"));
  if (!models.length) main.append(el("p", { className: "muted" }, "None yet: gitml model register <run> <name>"));
  main.append(el("table", { className: "kv", id: "models" }, el("tr", {}, ["model", "versions", "latest", "aliases"].map((h) => el("th", {}, h))),
    models.map((m) => el("tr", {}, el("td", {}, el("a", { href: `#/model/${encodeURIComponent(m.name)}` }, m.name)), el("td", {}, m.versions),
      el("td", {}, `v${m.latest}`), el("td", {}, Object.entries(m.aliases).map(([k, v]) => `${k} → v${v}`).join(", "))))));
  return { refresh: render };
};

pages.model = async (main, r) => {
  const m = await api(`model/${encodeURIComponent(r.arg)}`);
  main.append(el("h2", {}, m.name, el("span", { className: "muted" }, m.description ? ` · ${m.description}` : "")));
  main.append(el("h3", {}, "Versions"), el("table", { className: "kv", id: "versions" },
    el("tr", {}, ["version", "aliases", "run", "created", "by", "metrics"].map((h) => el("th", {}, h))),
    m.versions.map((v) => el("tr", {}, el("td", {}, `v${v.version}`), el("td", {}, v.aliases.join(", ")),
      el("td", {}, el("a", { href: `#/run/${encodeURIComponent(v.run)}` }, v.run)), el("td", {}, v.created_at), el("td", {}, v.created_by || ""),
      el("td", {}, Object.entries(v.metrics || {}).map(([k, x]) => `${k}=${fmt(x)}`).join(", "))))));
  main.append(el("h3", {}, "Alias history"), el("table", { className: "kv", id: "events" },
    el("tr", {}, ["when", "action", "alias", "version", "was", "by", "reason"].map((h) => el("th", {}, h))),
    m.events.map((e) => el("tr", {}, [e.at, e.action, e.alias, `v${e.version}`, e.previous ? `v${e.previous}` : "", e.by, e.reason].map((x) => el("td", {}, fmt(x)))))));
  const drift = m.reports.drift, perf = m.reports.performance;
  main.append(el("h3", {}, "Drift checks"));
  if (!drift.length) main.append(el("p", { className: "muted" }, "None: gitml drift -r " + m.name + "@production -c new.csv"));
  else main.append(el("table", { className: "kv", id: "drift" }, el("tr", {}, ["when", "current data", "drifted features", "share"].map((h) => el("th", {}, h))),
    drift.slice().reverse().map((d) => el("tr", {}, el("td", {}, d.created_at), el("td", {}, d.current), el("td", { className: d.drifted.length ? "worse" : "better" }, d.drifted.join(", ") || "none"), el("td", {}, fmt(d.share))))));
  main.append(el("h3", {}, "Live performance"));
  if (!perf.length) main.append(el("p", { className: "muted" }, "None: gitml monitor performance " + m.name + " --labels labels.csv"));
  else main.append(el("table", { className: "kv", id: "performance" }, el("tr", {}, ["when", "metric", "windows", "degraded"].map((h) => el("th", {}, h))),
    perf.slice().reverse().map((p) => el("tr", {}, el("td", {}, p.created_at), el("td", {}, p.metric), el("td", {}, p.windows), el("td", { className: p.degraded.length ? "worse" : "" }, p.degraded.join(", ") || "none")))));
  for (const bad of m.reports.unreadable) main.append(el("p", { className: "error" }, `${bad.file}: ${bad.error}`));
  main.append(el("h3", {}, "Commits to its registry file"), el("table", { className: "kv" },
    m.commits.map((c) => el("tr", {}, el("td", {}, c.commit.slice(0, 10)), el("td", {}, c.date), el("td", {}, c.author), el("td", {}, c.message)))));
  return { refresh: render };
};

// -- gitml check: the findings CI would report ---------------------------------------------
pages.check = async (main, r) => {
  const rev = r.params.get("rev") || "";
  const form = el("input", { type: "text", value: rev, placeholder: "a branch, tag or commit (empty: the working tree)" });
  form.addEventListener("keydown", (e) => { if (e.key === "Enter") go("check", { rev: form.value.trim() }); });
  main.append(el("h2", {}, "gitml check"), el("div", { className: "bar" }, form));
  const report = await api("check", { rev });
  const shown = report.findings.filter((f) => !f.suppressed), accepted = report.findings.length - shown.length;
  main.append(el("p", { id: "check-verdict" }, el("span", { className: report.failed ? "worse" : "better" }, report.failed ? "FAILED" : "ok"),
    ` · ${report.target}: ${shown.length} finding(s)${accepted ? `, ${accepted} accepted by [check] ignore` : ""}; `,
    el("span", { className: "muted" }, Object.entries(report.counts).map(([k, v]) => `${v} ${k}`).join(", "))));
  if (report.findings.length) main.append(el("table", { className: "kv", id: "findings" },
    el("tr", {}, ["level", "rule", "file", "about", "finding"].map((h) => el("th", {}, h))),
    report.findings.map((f) => el("tr", { className: f.suppressed ? "muted" : "" }, el("td", { className: f.level === "note" ? "" : "worse" }, f.suppressed ? `accepted (${f.suppressed})` : f.level),
      el("td", {}, f.rule), el("td", {}, f.file + (f.line ? `:${f.line}` : "")), el("td", {}, f.subject || ""), el("td", {}, f.message)))));
  return { refresh: render };
};

listen();
render();
