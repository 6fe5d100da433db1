"""Commands that watch a model in production: `drift`."""

from __future__ import annotations

import click

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
    import json

    from gitml import drift as check
    from gitml.query.output import render
    from gitml.repo import Repo

    repo = Repo.find()
    settings = check.Settings.from_config(repo, method, threshold)
    ref = check.resolve_reference(repo, reference)
    label, frame = check.load_current(repo, current, ref)
    report = check.compare(repo, ref, frame, label, settings, only=features)
    saved = None if no_save else check.save(repo, report)
    table = check.rows(report)
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


COMMANDS = [drift]
