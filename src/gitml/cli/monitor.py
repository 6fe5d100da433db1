"""Commands that watch a model in production: `drift`, `monitor labels`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gitml import watch as loop
from gitml.errors import UsageError
from gitml.monitoring import drift as check
from gitml.monitoring import performance
from gitml.monitoring.drift_report import rows, save
from gitml.monitoring.drift_sources import load_current, resolve_reference
from gitml.monitoring.monitor import MONITOR_DIR
from gitml.query.output import render
from gitml.repo import Repo

METHODS = ["auto", "ks", "wasserstein", "psi", "chisquare", "jensenshannon"]


@click.command()
@click.option(
    "--reference",
    "-r",
    required=True,
    metavar="RUN|NAME@ALIAS|FILE",
    help="What the data should look like: a model's or run's training input, a file.",
)
@click.option(
    "--current",
    "-c",
    required=True,
    metavar="FILE|requests[:NAME]",
    help="The data to check: a CSV/Parquet file, or what `gitml serve` logged.",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    help="The deciding figure  [default: [drift] method, or auto]",
)
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True),
              help="Its threshold: a p-value for ks/chisquare, a distance otherwise.")  # fmt: skip
@click.option("--feature", "features", multiple=True, help="Check only this feature; repeatable.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)  # fmt: skip
@click.option("--no-save", is_flag=True, help="Do not write the report under .gitml/monitor/.")
def drift(
    *, reference: str, current: str, method: str | None, threshold: float | None,
    features: tuple[str, ...], fmt: str, no_save: bool,
) -> int:  # fmt: skip
    """Compare new data with the data a model was trained on, feature by feature.

    Numbers: PSI, Kolmogorov-Smirnov and normalised Wasserstein; categories: PSI, chi-square,
    Jensen-Shannon and new categories; missing rates; and the model's predictions when the
    current data is a request log. By default a reference of up to 1,000 rows is judged by the
    p-value tests (< 0.05) and a larger one by distances (> 0.1), because p-values flag
    trivial shifts on large samples. Writes a TOML summary and a Parquet detail under
    .gitml/monitor/<name>/. Exit 1 when a feature drifted, 0 when none did.

    \b
    Example:
      gitml drift --reference wine@production --current requests
      gitml drift -r 20261123T0850 -c new-batch.parquet --method psi --threshold 0.25
    """
    repo = Repo.find()
    settings = check.Settings.from_config(repo, method, threshold)
    ref = resolve_reference(repo, reference)
    label, frame = load_current(repo, current, ref)
    report = check.compare(repo, ref, frame, label, settings, only=features)
    saved = None if no_save else save(repo, report)
    table = rows(report)
    if fmt == "json":
        payload = {"reference": report.reference, "current": report.current,
                   "drifted": report.drifted, "features": table}  # fmt: skip
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(f"reference: {report.reference} ({report.reference_rows} rows)")
        click.echo(f"current:   {report.current} ({report.current_rows} rows)")
        click.echo(render(table, fmt="table", columns=list(table[0]) if table else [], full=table),
                   nl=False)  # fmt: skip
        for note in report.notes:
            click.echo(f"note: {note}")
        verdict = (f"drift in {len(report.drifted)} of {len(report.features)} features: "
                   f"{', '.join(report.drifted)}" if report.drifted else
                   f"no drift in {len(report.features)} features")  # fmt: skip
        click.echo(verdict + (f"; report: {saved[0].relative_to(repo.root)}" if saved else ""))
    return 1 if report.drifted else 0


@click.group()
def monitor() -> None:
    """Watch served models: live performance once labels arrive.

    \b
    Example:
      gitml monitor labels labels.csv --model wine --window 1d
    """


@monitor.command()
@click.argument("source", metavar="LABELS", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "name", help="The served model  [default: the one with a request log]")
@click.option("--metric", help="The metric  [default: [registry] metric, or accuracy]")
@click.option("--window", default="1D", show_default=True,
              help="Time window, as pandas spells it: 1h, 6h, 1D, 7D.")  # fmt: skip
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="How much worse than at registration a window may be.")  # fmt: skip
def labels(
    *, source: Path, name: str | None, metric: str | None, window: str, tolerance: float
) -> int:
    """Keep labels for served predictions and report the live metric per time window.

    LABELS is a CSV or Parquet file with request_id, label and (for requests of several
    records) row, the record's place in its request, as `gitml serve` logged them. Every
    label kept so far is joined to the request log; the model's metric is computed per
    window and version and compared with the version's metric at registration. Exit 1 when
    a window with at least 30 labels is worse by more than --tolerance.

    \b
    Example:
      gitml monitor labels labels.csv --model wine --window 1h
    """
    repo = Repo.find()
    name = name or _served_model(repo)
    metric = metric or repo.config.get("registry", {}).get("metric", "accuracy")
    performance.metric_function(metric)  # an unknown metric keeps nothing
    kept = performance.keep_labels(repo, name, source)
    try:
        found, joined, unmatched = performance.windows(
            repo, name, metric=metric, every=window, tolerance=tolerance
        )
    except ValueError as exc:  # a window pandas cannot read
        raise click.BadParameter(str(exc), param_hint="--window") from exc
    report = performance.save(repo, name, metric, found)
    click.echo(f"kept {kept.relative_to(repo.root)}; {joined} labels matched a served "
               f"prediction" + (f", {unmatched} did not" if unmatched else ""))  # fmt: skip
    table = [{"window": w.start, "version": w.version, "labels": w.labelled,
              metric: round(w.value, 4), "at registration": w.registered,
              "status": "DEGRADED" if w.degraded else "ok"} for w in found]  # fmt: skip
    if table:
        click.echo(render(table, fmt="table", columns=list(table[0]), full=table), nl=False)
    degraded = [w for w in found if w.degraded]
    click.echo((f"degraded in {len(degraded)} window(s)" if degraded else "no degradation")
               + f"; report: {report.relative_to(repo.root)}")  # fmt: skip
    return 1 if degraded else 0


def _served_model(repo: Any) -> str:

    folder = repo.gitml_dir / MONITOR_DIR
    served = sorted(p.parent.name for p in folder.glob("*/requests")) if folder.is_dir() else []
    if len(served) != 1:
        raise UsageError("--model", f"name the model (served: {', '.join(served) or 'none'})")
    return served[0]


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--model", "spec", metavar="NAME@ALIAS", help="The model kept trained  [default: [watch] model]"
)
@click.option("--once", is_flag=True, help="Process the files there now, then exit (for CI, cron).")
@click.option("--retrain", type=click.Choice(["drift", "always", "never"]),
              help="When to retrain  [default: [watch] retrain, or drift]")  # fmt: skip
@click.option("--holdout", type=float, help="Share of each file held out to score  [default: 0.3]")
@click.option("--margin", type=float, help="How much better the challenger must be  [default: 0]")
@click.option("--metric", help="The score  [default: [registry] metric, or accuracy]")
@click.option("--target", help="The label column  [default: the one column not a feature]")
def watch(
    *, folder: Path, spec: str | None, once: bool, retrain: str | None, holdout: float | None,
    margin: float | None, metric: str | None, target: str | None,
) -> int:  # fmt: skip
    """Keep a model trained as labelled data lands in DIR; every step is a commit.

    For each new CSV or Parquet file: check drift against the champion's training data; on
    drift (or per --retrain) append part of the file to the training data and re-run the
    champion's recorded command with its params; register the challenger; score champion and
    challenger on the held-out rest of the file; promote the challenger only if it is better
    by --margin. A failing step leaves the alias where it was. Without --once it waits for
    files (watchdog) until stopped.

    \b
    Example:
      gitml watch incoming/ --model wine@production
      gitml watch incoming/ --model wine@production --once --margin 0.01
    """
    repo = Repo.find()
    policy = loop.Policy.from_config(repo, spec, retrain=retrain, holdout=holdout,
                                     margin=margin, metric=metric, target=target)  # fmt: skip
    outcomes = loop.watch(repo, policy, folder, once=once, echo=click.echo)
    if once and not outcomes:
        click.echo(f"nothing new in {folder}")
    return 2 if any(o.error for o in outcomes) else 0


COMMANDS = [drift, monitor, watch]
