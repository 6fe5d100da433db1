"""The index's parse workers: an error while they answer ends them instead of hanging."""

import os
import time

import pytest

from gitml.query import parse


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="workers start only with two cores")
def test_an_error_while_the_workers_answer_ends_them(monkeypatch):
    # Enough broken records that each worker's answer (~300 KB) overfills its pipe (64 KiB):
    # a worker is then blocked writing when the index stops reading.
    items = [(b"not = [toml\n", f"c{i}:run.toml") for i in range(parse.PARALLEL_FROM * 2)]

    def fails(stream):
        raise RuntimeError("the index failed while reading")

    monkeypatch.setattr(parse, "_receive", fails)
    started = time.monotonic()
    with pytest.raises(RuntimeError), parse.Parser() as parser:
        parser.parse(items)
    assert len(parser.workers) >= 2 and all(w.poll() is not None for w in parser.workers)
    assert time.monotonic() - started < 20, "the workers ended without being waited on forever"


def test_workers_parse_as_the_caller_would():
    items = [(f'id = "r{i}"\n'.encode(), f"c:{i}") for i in range(parse.PARALLEL_FROM + 10)]
    with parse.Parser() as parser:
        parsed = parser.parse(items)
    assert len(parsed) == len(items)
    assert parsed == [parse.parse_record(raw, source) for raw, source in items]
