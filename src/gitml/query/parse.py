"""Run records parsed, validated and flattened for the index: here, or on every core.

A record becomes a flat row (JSON), an error, the outputs it names, whether the row is strict
JSON (SQLite's JSON functions refuse NaN), and its field kinds (which fields it has and what kind
of value each holds: `--where` checks field names and value kinds against these, in SQL, without
reading every row). A large batch goes to worker processes (`python -m gitml.query.parse`) fed
pickled batches through pipes.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
from typing import Any, NamedTuple

from gitml import store
from gitml.errors import GitmlError
from gitml.query.rows import flatten
from gitml.query.where import kind_of

PARALLEL_FROM = 2_000  # records to parse before worker processes pay for their start-up


class Parsed(NamedTuple):
    """One record, as the index stores it."""

    row: str | None  # the flat row as JSON; None when the record is invalid
    error: str | None  # why it is invalid
    made: list[tuple[str, str]]  # (path, md5) of each output
    strict: bool = False  # the row is strict JSON (no NaN or infinity): SQL may read it
    kinds: str | None = None  # JSON [[field, kind], ...]: `where.kind_of`, or null
    running: bool = False  # the record says its run is still going


def _failed(error: str) -> Parsed:
    return Parsed(None, error, [])


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
        record = raw if isinstance(raw, dict) else read_toml(raw, source)
        data = store.to_json_types(record)
        store.validate_json("run", data, source=source)
        made = [(path, ref["md5"]) for path, ref in data.get("outputs", {}).items()]
        flat = flatten(data)
        kinds = json.dumps(sorted((k, kind_of(v) if v is not None else "null")
                                  for k, v in flat.items()))  # fmt: skip
        running = flat.get("status") == "running"
        try:
            return Parsed(json.dumps(flat, allow_nan=False), None, made, True, kinds, running)
        except ValueError:  # NaN or infinity: Python's JSON has them, SQLite's does not
            return Parsed(json.dumps(flat), None, made, False, kinds, running)
    except GitmlError as exc:
        return _failed(str(exc))
    except RecursionError:
        return _failed(f"{source}: nested too deeply to read")
    except Exception as exc:  # a record is a stranger's input: never let it stop a query
        return _failed(f"{source}: unreadable ({type(exc).__name__}: {exc})")


def read_toml(raw: bytes, source: str) -> dict[str, Any]:
    """A run.toml's data: rtoml (Rust, 16 us a record) first, tomllib's answer where it fails.

    tomllib (190 us a record) was two thirds of a cold index's parsing. What rtoml refuses,
    `store.parse_toml` reads again, so an error reads the same as anywhere else in gitml;
    tests/query/test_read_toml.py checks that the two agree on what each accepts.
    """
    import rtoml

    if len(raw) <= store.MAX_RECORD_BYTES and _toml_1_0(raw):
        try:
            data: dict[str, Any] = rtoml.loads(raw.decode())
        except Exception:  # any refusal: tomllib says why
            pass
        else:
            return data
    return store.parse_toml(raw, source=source)


# rtoml reads TOML 1.1, which tomllib (TOML 1.0) refuses in places: \x and \e escapes, inline
# tables over several lines or with a trailing comma, times without seconds, a byte-order mark.
# A record that might hold one (gitml never writes them) goes to tomllib, so both read the same.
_TOML_1_1 = (b"\\x", b"\\e", b"{")
_DIGITS = frozenset(b"0123456789")
_HOUR_BEFORE = frozenset(b"0123456789:+-")  # an offset's or a seconds' digits: not an hour


def _toml_1_0(raw: bytes) -> bool:
    if raw.startswith(b"\xef\xbb\xbf") or any(mark in raw for mark in _TOML_1_1):
        return False
    at = raw.find(b":")
    while at != -1:  # HH:MM not followed by :SS (a regex with a look-behind took 50 us)
        hour, minute = raw[at - 2 : at], raw[at + 1 : at + 3]
        if (
            at >= 2
            and len(minute) == 2
            and _DIGITS.issuperset(hour + minute)
            and (at == 2 or raw[at - 3] not in _HOUR_BEFORE)
            and raw[at + 3 : at + 4] != b":"
        ):
            return False
        at = raw.find(b":", at + 1)
    return True


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
        # Closing stdout too: after an error here, a worker may be blocked writing a batch
        # that will never be read, and waiting for it would hang (it gets EPIPE and ends).
        for worker in self.workers:
            for stream in (worker.stdin, worker.stdout):
                with contextlib.suppress(OSError):
                    assert stream is not None
                    stream.close()
        for worker in self.workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
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
            return [Parsed(*row) for worker in self.workers for row in _receive(worker.stdout)]
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError):
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
        try:
            # Plain tuples: run as __main__, this module's `Parsed` would not unpickle there.
            _send(sys.stdout.buffer, [tuple(parse_record(raw, source)) for raw, source in items])
        except BrokenPipeError:  # the index stopped reading: it failed, or was interrupted
            return


if __name__ == "__main__":
    _work()
