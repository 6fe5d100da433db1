"""Commands that put a registered model to work: `serve` over HTTP, `predict` in batch."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gitml.errors import UsageError
from gitml.http.app import serve as run_server
from gitml.predict import predict_file
from gitml.predict_parts import predict_folder
from gitml.repo import Repo


@click.command()
@click.argument("spec", metavar="NAME@ALIAS")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="The port; 0 picks a free one (printed at start).")  # fmt: skip
@click.option("--reload-on-promote", is_flag=True,
              help="Swap the model in place when the alias moves (promote, rollback).")  # fmt: skip
@click.option("--no-log", is_flag=True,
              help="Do not log requests to .gitml/monitor/<name>/requests/.")  # fmt: skip
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=16.0,
              show_default=True, help="Bodies larger than this are answered 413.")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No access log on stderr.")
@click.option("--token-env", default="GITML_SERVE_TOKEN", show_default=True, metavar="VAR",
              help="When this environment variable is set, requests need "
                   "'Authorization: Bearer <its value>' (not /health, /ping).")  # fmt: skip
@click.option("--allow-findings", is_flag=True,
              help="Load a model file despite `gitml check` findings.")  # fmt: skip
def serve(
    *, spec: str, host: str, port: int, reload_on_promote: bool, no_log: bool,
    max_body_mb: float, quiet: bool, token_env: str, allow_findings: bool,
) -> None:  # fmt: skip
    """Serve a registered model over HTTP: /predict, /invocations, /health, /metadata.

    The artifact's bytes are checked against the md5 the registry recorded before the model is
    loaded, and the file is scanned for dangerous imports without loading it (as `gitml check`
    does); a mismatch or a finding refuses to start. Requests are validated against the model's
    signature (422 naming the field at fault) and logged with their predictions to Parquet under
    .gitml/monitor/<name>/requests/. /invocations takes MLflow's scoring-server bodies
    (dataframe_split, dataframe_records, instances, inputs, CSV), so MLflow clients work
    unchanged. The OpenAPI spec is at /openapi.json.

    \b
    Example:
      gitml serve wine@production --port 8000 --reload-on-promote
      curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
        -d '{"records": [{"alcohol": 13.2, "malic_acid": 1.8, ...}]}'
    """
    run_server(
        Repo.find(), spec, host=host, port=port, reload_on_promote=reload_on_promote,
        log_requests=not no_log, max_body=int(max_body_mb * 1024 * 1024), access_log=not quiet,
        token=os.environ.get(token_env) or None, allow_findings=allow_findings,
    )  # fmt: skip


@click.command()
@click.argument("spec", metavar="NAME@ALIAS")
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Where to write predictions: .csv, .parquet, or a folder.")  # fmt: skip
@click.option("--proba", is_flag=True, help="Also write one proba_<class> column per class.")
@click.option("--keep", multiple=True, metavar="COLUMN",
              help="Copy this input column (an id, say) into the output; repeatable.")  # fmt: skip
@click.option("--chunk-rows", type=int, default=100_000, show_default=True,
              help="Rows predicted at a time; memory grows with it, not the input.")  # fmt: skip
@click.option("--progress/--no-progress", default=None,
              help="The progress bar  [default: on a terminal]")  # fmt: skip
@click.option("--allow-findings", is_flag=True,
              help="Load a model file despite `gitml check` findings.")  # fmt: skip
@click.option(
    "--dask", "dask_address", metavar="ADDRESS",
    help="With a folder INPUT: predict its partitions on the Dask cluster at ADDRESS.",
)  # fmt: skip
@click.option(
    "--git-remote", default="origin", show_default=True,
    help="With --dask: the git remote workers clone the registry from.",
)  # fmt: skip
def predict(
    *, spec: str, source: Path, output: Path, proba: bool, keep: tuple[str, ...],
    chunk_rows: int, progress: bool | None, allow_findings: bool, dask_address: str | None,
    git_remote: str,
) -> None:  # fmt: skip
    """Predict every row of a CSV or Parquet file with a registered model, in chunks.

    The input is streamed a chunk at a time, so memory stays flat on files larger than RAM.
    Each chunk is checked against the model's signature (its feature columns must be there;
    other columns are ignored unless kept). The output has a prediction column, in input
    order, and is written whole or not at all. The model file is scanned before it is loaded,
    as `gitml serve` does.

    \b
    Example:
      gitml predict wine@production new-wines.parquet -o scored.parquet --keep id
      gitml predict wine@3 batch.csv -o out.csv --proba
    """
    if source.is_dir():
        parts = predict_folder(
            Repo.find(), spec, source, output, proba=proba, dask_address=dask_address,
            git_remote=git_remote, allow_findings=allow_findings,
        )  # fmt: skip
        click.echo(f"wrote {parts.rows} predictions of {parts.partitions} partition(s) to "
                   f"{parts.output} in {parts.seconds:.2f} s")  # fmt: skip
        return
    if dask_address:
        raise UsageError("--dask", f"{source} is one file; give a folder of partitions")
    result = predict_file(
        Repo.find(), spec, source, output, chunk_rows=chunk_rows, proba=proba, keep=keep,
        progress=progress, allow_findings=allow_findings,
    )  # fmt: skip
    rate = result.rows / result.seconds if result.seconds else 0.0
    click.echo(
        f"wrote {result.rows} predictions of {result.name} v{result.version} to {result.output} "
        f"in {result.seconds:.2f} s ({rate:,.0f} rows/s)"
    )


COMMANDS = [serve, predict]
