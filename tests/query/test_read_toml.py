"""The index reads run.toml with rtoml, falling back to tomllib: the two must agree.

Whatever rtoml accepts, tomllib accepts with the same values (else the index would list a run
that `gitml show` then refuses, or show other values); what rtoml refuses, tomllib reads again
(`parse.read_toml`), so there a difference costs only time. Checked on TOML's corner cases and
on thousands of random mutations of a real record.
"""

import json
import random
import tomllib

import pytest
import rtoml

from gitml import store
from gitml.errors import GitmlError
from gitml.query.parse import _toml_1_0, read_toml

RECORD = """\
schema_version = 1
id = "20260103T161333Z-001869"
name = "run-6249 \\u00e9 \\"quoted\\""
status = "finished"
start_time = 2026-01-03T16:13:33+00:00
end_time = 2026-01-03T16:14:16.250-08:00
command = ["python", "train.py", '''C:\\path''']
cwd = "."

[params]
depth = 10
lr = 3e-1
model = "svm"
flags = [true, false, 1, 2.5, "x"]
big = 9_223_372_036_854_775_807
hex = 0xDEAD_beef
neg_zero = -0.0
nan = nan
inf = -inf

[params."dotted.key"]
inner = { a = 1, b = [ ] }

[metrics]
accuracy = 0.0784087783600743
"val-loss" = 1e-300

[tags]
owner = \"\"\"multi
line\"\"\"
when = 1979-05-27
at = 07:32:00.999999
local = 1979-05-27T07:32:00

[code]
commit = "0000000000000000000000000000000000001869"
dirty = false

[outputs."model.pkl"]
md5 = "00000000000000000000000000001870"
size = 12
"""

CORNERS = [
    "a = 99999999999999999999",
    'a = "\\ud800"',
    "a = 1\na = 2",
    "[t]\n[t]",
    'a = """\x00"""',
    "a = 1979-05-27T07:32:00Z",
    "a = 1979-05-27 07:32:00",
    "a = 1979-02-30",
    "a = 24:00:00",
    "a = +inf",
    "a = 1__0",
    "a = 01",
    "a = 0o17",
    "a = 0b102",
    "a = .5",
    "a = 5.",
    "a = 1e",
    'a = "\\x41"',
    'a = "\\U0001F600"',
    "a = 'lit\\eral'",
    "a = [1,]",
    "a = {b = 1,}",
    "a.b = 1\na = 2",
    "[a]\nb = 1\n[a.b]",
    "[[a]]\n[a]",
    'a = [[1], ["x"]]',
    "= 1",
    "a =",
    "a = true\r\nb = 1",
    "a = 1 # comment \x7f",
    "\ufeffa = 1",
    'a = "tab\there"',
    "'quoted key' = 1",
    '"" = 1',
    "a = 1979-05-27T07:32:00.123456789-00:00",
    "a = -0",
    "a = 0x",
    "a = inf_",
    "[a.b.c]\n[a]\nd = 1",
    "a = { b = { c = { d = 1 } } }",
]


def outcome(text):
    """(True, data as JSON text) or (False, the error's type)."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        return False, type(exc).__name__
    return True, json.dumps(store.to_json_types(data), sort_keys=True)


def rtoml_outcome(text):
    try:
        data = rtoml.loads(text)
    except Exception as exc:  # any refusal counts as a refusal
        return False, type(exc).__name__
    return True, json.dumps(store.to_json_types(data), sort_keys=True)


def _mutations(rng, text, count):
    alphabet = ['"', "'", "=", "[", "]", "{", "}", ",", ".", "\\", "\n", " ", "#", "0", "e",
                "-", ":", "T", "Z", "+", "_", "x", "\x00", "é", "\t", "u"]  # fmt: skip
    for _ in range(count):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(chars))
            action = rng.random()
            if action < 0.4:
                chars[at] = rng.choice(alphabet)
            elif action < 0.7:
                del chars[at]
            else:
                chars.insert(at, rng.choice(alphabet))
        yield "".join(chars)


def test_rtoml_never_accepts_what_tomllib_refuses_nor_reads_it_otherwise():
    """Where rtoml is asked at all (`parse._toml_1_0`), it answers as tomllib does."""
    plain = RECORD.replace("inner = { a = 1, b = [ ] }", "a = 1\nb = [ ]")
    assert _toml_1_0(plain.encode()) and outcome(plain) == rtoml_outcome(plain)
    rng = random.Random(5)
    cases = [*CORNERS, *_mutations(rng, plain, 20000), *_mutations(rng, RECORD, 5000)]
    both = only_tomllib = neither = 0
    for text in cases:
        if not _toml_1_0(text.encode(errors="surrogatepass")):
            continue  # tomllib reads it
        ours, theirs = rtoml_outcome(text), outcome(text)
        if ours[0]:
            assert theirs == ours, f"rtoml and tomllib differ on {text!r}"
            both += 1
        elif theirs[0]:
            only_tomllib += 1  # read again by tomllib: slower, the same answer
        else:
            neither += 1
    print(f"\n{len(cases)} documents: {both} read the same by both, {only_tomllib} only by "
          f"tomllib, {neither} refused by both; the rest go to tomllib alone")  # fmt: skip
    assert len(cases) == len(CORNERS) + 25000 and both > 2000 and neither > 2000


def test_read_toml_answers_as_tomllib_does():
    plain = RECORD.replace("inner = { a = 1, b = [ ] }", "a = 1\nb = [ ]")
    for text in (RECORD, plain):  # through tomllib ({ is TOML 1.1's business), through rtoml
        read = json.dumps(store.to_json_types(read_toml(text.encode(), "r.toml")), sort_keys=True)
        assert (True, read) == outcome(text)
    with pytest.raises(GitmlError, match=r"^x:run.toml: invalid TOML: Invalid value"):
        read_toml(b"a = [1,", "x:run.toml")
    with pytest.raises(GitmlError, match="not UTF-8"):
        read_toml(b"a = '\xff'", "x:run.toml")
    with pytest.raises(GitmlError, match="nested too deeply"):
        read_toml(b"a = " + b"[" * 5000 + b"]" * 5000, "x:run.toml")
