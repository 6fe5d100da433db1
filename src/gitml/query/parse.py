"""Run records parsed, validated and flattened for the index: here, or on every core.

A record becomes a flat row (JSON), an error, and the outputs it names. A large batch goes to
worker processes (`python -m gitml.query.parse`) fed pickled batches through pipes.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
from typing import Any

from gitml import store
from gitml.errors import GitmlError
from gitml.query.rows import flatten

PARALLEL_FROM = 2_000  # records to parse before worker processes pay for their start-up


Parsed = tuple[str | None, str | None, list[tuple[str, str]]]


def decode_row(text: str) -> Any:
    """An index row: orjson's fast path, Python's json where a value is NaN or infinite."""
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # NaN, Infinity, -Infinity: losses diverge


def parse_record(raw: bytes | dict[str, Any], source: str) -> Parsed:
    """A record's flat row as JSON, or why it is not a valid run record; and its outputs.

    ``raw`` is a run.toml's bytes, or a record already built (TOML types: datetimes as
    datetimes), as a run read from DVC's history is. Whatever a record holds, the answer is a
    row or an error naming ``source``: one bad record is skipped with a warning, it never
    stops a query over the rest.
    """
    try:
        record = raw if isinstance(raw, dict) else store.parse_toml(raw, source=source)
        data = store.to_json_types(record)
        store.validate_json("run", data, source=source)
        made = [(path, ref["md5"]) for path, ref in data.get("outputs", {}).items()]
        return json.dumps(flatten(data)), None, made
    except GitmlError as exc:
        return None, str(exc), []
    except RecursionError:
        return None, f"{source}: nested too deeply to read", []
    except Exception as exc:  # a record is a stranger's input: never let it stop a query
        return None, f"{source}: unreadable ({type(exc).__name__}: {exc})", []


class Parser:
    """Parses batches of records; a large batch on every core, through worker processes.

    Parsing and validating is ~0.25 ms a record, 25 s for 100,000 on one core. The workers are
    plain `python -m gitml.query.parse` processes fed pickled batches on stdin, not
    multiprocessing's: spawn would re-run the caller's unguarded script, and fork is unsafe
    while the git streams' threads run. They cost ~0.15 s to start, so only a large batch
    starts them; if one fails, the batch is parsed here.
    """

    def __init__(self) -> None:
        self.workers: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            with contextlib.suppress(OSError):
                assert worker.stdin is not None
                worker.stdin.close()
            worker.wait()

    def parse(self, items: list[tuple[bytes, str]]) -> list[Parsed]:
        """(raw, source) pairs -> (row, error, outputs), in order."""
        count = os.cpu_count() or 1
        if len(items) < PARALLEL_FROM or count < 2:
            return [parse_record(raw, source) for raw, source in items]
        if not self.workers:
            argv = [sys.executable, "-m", "gitml.query.parse"]
            self.workers = [
                subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                for _ in range(count)
            ]
        size = -(-len(items) // len(self.workers))
        try:
            for i, worker in enumerate(self.workers):
                _send(worker.stdin, items[i * size : (i + 1) * size])
            return [row for worker in self.workers for row in _receive(worker.stdout)]
        except (OSError, EOFError, pickle.UnpicklingError):
            self.__exit__()
            self.workers = []
            return [parse_record(raw, source) for raw, source in items]


def _send(stream: Any, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _receive(stream: Any) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the index worker stopped")
    data = stream.read(int.from_bytes(head, "little"))
    if len(data) < int.from_bytes(head, "little"):
        raise EOFError("the index worker stopped")
    return pickle.loads(data)  # our own child process, through a pipe


def _work() -> None:
    """The worker's loop: batches of (raw, source) in, their `_parse` results out."""
    while True:
        try:
            items = _receive(sys.stdin.buffer)
        except EOFError:
            return
        _send(sys.stdout.buffer, [parse_record(raw, source) for raw, source in items])


if __name__ == "__main__":
    _work()
