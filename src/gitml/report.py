"""`gitml report`: one self-contained HTML page of a project's runs, plus PNG plots.

The page holds, for the runs of the chosen revisions:
- final metrics across commits (one point per run, a line through each commit's mean),
- step-metric curves per run,
- the runs table: id, name, status, commit, the params that vary, final metrics;
- per monitored model: the latest drift check (PSI per feature, drifted ones in red), the
  share of drifted features over the checks kept, and the live metric per window against the
  metric at registration (from `gitml drift` and `gitml monitor labels`).

Plots are drawn by matplotlib: inline SVG in the HTML (no scripts, no external files, so the
page opens anywhere, offline), and PNG files beside it with a Markdown page that shows them,
ready for a PR comment or a wiki.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml import git, report_sweeps, store
from gitml.diff_render import format_value
from gitml.errors import UsageError
from gitml.monitoring.monitor import MONITOR_DIR
from gitml.query import where as where_lang
from gitml.query.api import collect, step_metrics
from gitml.query.indexed import IndexedRun
from gitml.repo import Repo

WORKSPACE = "workspace"  # the x position of runs not committed yet
MAX_FIGURES = 12


@dataclass
class ReportData:
    """What the page shows: the runs, their commits in history order, their step metrics."""

    runs: list[IndexedRun]
    commits: list[tuple[str, int, str]]  # (id, time, subject), oldest first
    steps: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    revs: tuple[str, ...] = ()


def gather(
    repo: Repo, *, revs: tuple[str, ...] = (), where: str | None = None, max_runs: int = 30
) -> ReportData:
    """The runs of ``revs`` (all branches and the working tree when empty) that match."""
    if max_runs < 1:
        raise UsageError("--max-runs", f"{max_runs} must be at least 1")
    runs = collect(repo)
    if revs:
        history = set(git.rev_list(repo.root, revs))
        runs = [r for r in runs if r.landed in history]
    if where:
        predicate = where_lang.compile_where(where)
        runs = [r for r in runs if r.row is not None and predicate(r.row)]
    runs.sort(key=lambda r: r.run_id)
    landed = {r.landed for r in runs if r.landed}
    info = git.commit_info(repo.root, landed)
    commits = sorted(((c, *info[c]) for c in landed), key=lambda c: (c[1], c[0]))
    data = ReportData(runs=runs, commits=commits, revs=revs)
    for run in runs[-max_runs:]:
        per_metric: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for step, _, value, name in step_metrics(repo, run):
            per_metric[name].append((step, value))
        data.steps[run.run_id] = {k: sorted(v) for k, v in per_metric.items()}
    return data


def _label(run: IndexedRun) -> str:
    name = (run.row or {}).get("name")
    return f"{name} ({run.run_id[-6:]})" if name else run.run_id


def _metric_names(runs: list[IndexedRun]) -> list[str]:
    names = {k.partition(".")[2] for r in runs for k in (r.row or {}) if k.startswith("metrics.")}
    return sorted(names)


def _figures(data: ReportData) -> list[tuple[str, str, Any]]:
    """(section: final or steps, title, matplotlib figure) for every plot, capped per section."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    figures = []
    positions = {c[0]: i for i, c in enumerate(data.commits)}
    labels = [f"{c[0][:7]} {c[2][:24]}" for c in data.commits]
    if any(r.landed is None for r in data.runs):
        positions[WORKSPACE] = len(labels)
        labels.append(WORKSPACE)
    for metric in _metric_names(data.runs)[:MAX_FIGURES]:
        fig = Figure(figsize=(7, 3.6), layout="constrained")
        ax = fig.add_subplot()
        per_commit: dict[int, list[float]] = defaultdict(list)
        for run in data.runs:
            value = (run.row or {}).get(f"metrics.{metric}")
            if isinstance(value, int | float) and not math.isnan(value):
                per_commit[positions[run.landed or WORKSPACE]].append(value)
        xs = sorted(per_commit)
        for x in xs:
            ax.scatter([x] * len(per_commit[x]), per_commit[x], color="C0", alpha=0.6, s=24)
        ax.plot(xs, [sum(per_commit[x]) / len(per_commit[x]) for x in xs], color="C0")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{metric}: final value per run, by commit")
        ax.grid(alpha=0.3)
        figures.append(("final", metric, fig))
    curves: dict[str, list[tuple[str, list[tuple[int, float]]]]] = defaultdict(list)
    by_id = {r.run_id: r for r in data.runs}
    for run_id, metrics in data.steps.items():
        for name, points in metrics.items():
            if len(points) > 1:
                curves[name].append((_label(by_id[run_id]), points))
    for name in sorted(curves)[:MAX_FIGURES]:
        fig = Figure(figsize=(7, 3.6), layout="constrained")
        ax = fig.add_subplot()
        for label, points in curves[name]:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
        ax.set_xlabel("step")
        ax.set_title(f"{name} per step")
        ax.grid(alpha=0.3)
        if len(curves[name]) <= 12:
            ax.legend(fontsize=7)
        figures.append(("steps", name, fig))
    return figures


def _monitor_figures(repo: Repo) -> list[tuple[str, str, Any]]:
    """Drift and live-performance plots of every model under `.gitml/monitor/`."""
    import pandas as pd
    from matplotlib.figure import Figure

    figures: list[tuple[str, str, Any]] = []
    folder = repo.gitml_dir / MONITOR_DIR
    for model in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        checks = sorted(model.glob("drift-*.toml"))
        if checks:
            latest = store.read_toml(checks[-1], kind="drift")
            features = latest["features"]
            fig = Figure(figsize=(7, max(2.4, 0.28 * len(features) + 1)), layout="constrained")
            ax = fig.add_subplot()
            ax.barh([f["feature"] for f in features], [f["psi"] for f in features],
                    color=["#cf222e" if f["drifted"] else "#2da44e" for f in features])  # fmt: skip
            ax.invert_yaxis()
            ax.axvline(0.25, color="#57606a", linestyle="--", linewidth=1)
            ax.set_xlabel("PSI (dashed: 0.25, major shift); red: drifted by its test")
            ax.set_title(f"{model.name}: latest drift check, {str(latest['created_at'])[:16]}")
            ax.tick_params(axis="y", labelsize=7)
            figures.append(("drift", model.name, fig))
        if len(checks) > 1:
            history = [store.read_toml(c, kind="drift") for c in checks]
            fig = Figure(figsize=(7, 3.0), layout="constrained")
            ax = fig.add_subplot()
            ax.plot([str(h["created_at"])[:16] for h in history],
                    [h.get("share", 0.0) for h in history], marker="o")  # fmt: skip
            ax.set_ylim(0, 1)
            ax.set_ylabel("share of features drifted")
            ax.set_title(f"{model.name}: drift checks over time")
            ax.tick_params(axis="x", labelsize=7, rotation=30)
            ax.grid(alpha=0.3)
            figures.append(("drift", f"{model.name} over time", fig))
        tables = sorted(model.glob("performance-*.parquet"))
        if tables:
            frame = pd.read_parquet(tables[-1])
            if frame.empty:
                continue
            summary = store.parse_toml(tables[-1].with_suffix(".toml").read_bytes(),
                                       source=str(tables[-1]))  # fmt: skip
            fig = Figure(figsize=(7, 3.2), layout="constrained")
            ax = fig.add_subplot()
            for i, (version, part) in enumerate(frame.groupby("version")):
                ax.plot(part["start"].str[:16], part["value"], marker="o", color=f"C{i}",
                        label=f"v{version} live")  # fmt: skip
                registered = part["registered"].dropna()
                if len(registered):
                    ax.axhline(registered.iloc[0], color=f"C{i}", linestyle="--", linewidth=1,
                               label=f"v{version} at registration")  # fmt: skip
            ax.set_title(f"{model.name}: live {summary.get('metric', 'metric')} per window")
            ax.tick_params(axis="x", labelsize=7, rotation=30)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            figures.append(("performance", model.name, fig))
    return figures


def _varying_params(runs: list[IndexedRun]) -> tuple[list[str], dict[str, Any]]:
    """Params whose value differs between runs, and those shared by all (with the value)."""
    keys = sorted({k for r in runs for k in (r.row or {}) if k.startswith("params.")})
    varying, constant = [], {}
    for key in keys:
        values = {repr((r.row or {}).get(key)) for r in runs}
        if len(values) > 1:
            varying.append(key)
        else:
            constant[key.partition(".")[2]] = (runs[0].row or {}).get(key)
    return varying, constant


def _cell(value: Any) -> str:

    return format_value(value, missing="")


Table = tuple[list[str], list[list[str]]]  # header, rows of cells


def _table(data: ReportData, varying: list[str]) -> Table:
    """The runs table, newest first: id, name, status, commit, the varying params, metrics."""
    metrics = [f"metrics.{m}" for m in _metric_names(data.runs)]
    head = ["run", "name", "status", "commit", *varying, *metrics]
    rows = []
    for run in reversed(data.runs):
        row = run.row or {}
        rows.append([
            run.run_id, _cell(row.get("name")), _cell(row.get("status")),
            run.landed[:8] if run.landed else WORKSPACE,
            *(_cell(row.get(k)) for k in (*varying, *metrics)),
        ])  # fmt: skip
    return head, rows


def _svg(fig: Any) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: smaller, findable
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "metric"


def render_html(
    repo: Repo,
    data: ReportData,
    figures: list[tuple[str, str, Any]],
    table: Table,
    constant: dict[str, Any],
    *,
    sweeps: Table = ([], []),
) -> str:
    """The whole page as one string: inline CSS and SVG, nothing fetched."""
    head, rows = table
    scope = ", ".join(data.revs) if data.revs else "all branches and the working tree"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # or browsers ask the server for /favicon.ico
        f"<title>gitml report: {esc(repo.root.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>gitml report: {esc(repo.root.name)}</h1>",
        f'<p class="meta">{len(data.runs)} runs in {len(data.commits)} commits of {esc(scope)}; '
        f"generated {now}.</p>",
    ]
    for section, title in (("final", "Final metrics across commits"),
                           ("steps", "Step metrics per run"),
                           ("sweeps", "Sweeps: the metric of each trial"),
                           ("drift", "Drift of served and incoming data"),
                           ("performance", "Live performance once labels arrived")):  # fmt: skip
        plots = [(name, fig) for kind, name, fig in figures if kind == section]
        if not plots:
            continue
        parts.append(f"<h2>{title}</h2><div class='plots'>")
        parts += [f'<figure class="plot" id="{section}-{esc(_slug(n))}">{_svg(f)}</figure>'
                  for n, f in plots]  # fmt: skip
        parts.append("</div>")
    if sweeps[1]:
        parts.append("<h2>Sweeps</h2>" + _html_table(*sweeps, css_id="sweeps"))
    shown = [h.removeprefix("metrics.").removeprefix("params.") for h in head]
    parts.append("<h2>Runs</h2>" + _html_table(shown, rows))
    if constant:
        parts.append("<h2>Params shared by every run</h2><table><tbody>")
        parts += [
            f"<tr><th>{esc(k)}</th><td>{esc(_cell(v))}</td></tr>" for k, v in constant.items()
        ]
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _html_table(head: list[str], rows: list[list[str]], *, css_id: str | None = None) -> str:
    esc = html.escape
    cells = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    table = f'<table id="{css_id}">' if css_id else "<table>"
    return f"{table}<thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def render_markdown(
    data: ReportData, table: Table, pngs: list[tuple[str, Path]], base: Path,
    sweeps: Table = ([], []),
) -> str:  # fmt: skip
    """A Markdown page with the PNG plots, the sweeps and the runs table, for PR comments."""
    lines = [f"## gitml report: {len(data.runs)} runs", ""]
    lines += [f"![{title}]({path.relative_to(base).as_posix()})" for title, path in pngs]
    for head, rows in (sweeps, table) if sweeps[1] else (table,):
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(
    repo: Repo,
    output: Path,
    *,
    revs: tuple[str, ...] = (),
    where: str | None = None,
    max_runs: int = 30,
    png_dir: Path | None = None,
) -> dict[str, Any]:
    """Write the HTML page, and the PNGs with their Markdown page; return what was written."""
    data = gather(repo, revs=revs, where=where, max_runs=max_runs)
    if not data.runs:
        raise UsageError("--rev/--where" if revs or where else "report", "no runs to report on")
    sweeps = report_sweeps.summarize(repo, data.runs)
    figures = _figures(data) + report_sweeps.figures(sweeps, MAX_FIGURES) + _monitor_figures(repo)
    png_dir = png_dir or output.with_name(output.stem + "_files")
    png_dir.mkdir(parents=True, exist_ok=True)
    pngs = []
    for section, name, fig in figures:
        path = png_dir / f"{section}-{_slug(name)}.png"
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        store.atomic_write(path, buffer.getvalue())
        pngs.append((name, path))
    varying, constant = _varying_params(data.runs)
    table = _table(data, varying)
    swept = report_sweeps.table(sweeps)
    page = render_html(repo, data, figures, table, constant, sweeps=swept)
    store.atomic_write(output, page.encode())
    markdown = png_dir / "report.md"
    store.atomic_write(markdown, render_markdown(data, table, pngs, png_dir, swept).encode())
    return {"html": output, "markdown": markdown, "pngs": [p for _, p in pngs],
            "runs": len(data.runs), "commits": len(data.commits),
            "sweeps": len(sweeps)}  # fmt: skip


CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #57606a; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
.plot { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem; }
.plot svg { width: 560px; height: auto; display: block; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; }
thead th { background: #f6f8fa; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #fbfcfd; }
"""
