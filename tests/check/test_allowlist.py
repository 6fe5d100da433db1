"""Model files judged by an allow-list: gadgets no deny-list knows are found and never run.

Each gadget is a real pickle whose unpickling would leave a file in a folder outside the
repository (the witness). `gitml check` must report every one, and register, serve, predict,
watch (which loads `model@version` through `serve.load`) and pre-push must never run one.
"""

import io
import json
import pickle
import subprocess
import sys
import tomllib

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gitml.check.pickles import scan_file
from gitml.errors import UnsafeModelError
from gitml.serving.models import load_model
from tests.helpers import commit_all, gitml, push_to_new_origin

# name -> source of the __reduce__ body; `OUT` is the witness folder, `SRC` a file beside it.
GADGETS = {
    "runsource": "import code; return (code.InteractiveInterpreter.runsource, "
                 "(code.InteractiveInterpreter(), f'open({OUT!r} + \"/runsource\", \"w\")'))",
    "console-push": "import code; return (code.InteractiveConsole.push, "
                    "(code.InteractiveConsole(), f'open({OUT!r} + \"/push\", \"w\")'))",
    "timeit": "import timeit, time; return (timeit.timeit, "
              "(f'open({OUT!r} + \"/timeit\", \"w\")', 'pass', time.perf_counter, 1))",
    "cprofile": "import cProfile; "
                "return (cProfile.run, (f'open({OUT!r} + \"/cprofile\", \"w\")',))",
    "pipepager": "import pydoc; return (pydoc.pipepager, ('x', f'touch {OUT}/pipepager'))",
    "exec": "return (exec, (f'open({OUT!r} + \"/exec\", \"w\")',))",
    "popen": "import subprocess; return (subprocess.Popen, (['touch', f'{OUT}/popen'],))",
    "memmap": "import numpy; return (numpy.memmap, (f'{OUT}/memmap', 'uint8', 'w+', 0, (1,)))",
    "numpy-save": "import numpy; return (numpy.save, (f'{OUT}/npsave.npy', [1]))",
    "numpy-load": "import numpy; return (numpy.load, (SRC, None, True))",
    "joblib-load": "import joblib; return (joblib.load, (SRC,))",
    "pandas-read-pickle": "import pandas; return (pandas.read_pickle, (SRC,))",
    "svmlight": "from sklearn.datasets import dump_svmlight_file; "
                "return (dump_svmlight_file, ([[1.0]], [1], f'{OUT}/svmlight'))",
    "to-csv": "import pandas; return (pandas.DataFrame.to_csv, "
              "(pandas.DataFrame({'a': [1]}), f'{OUT}/to_csv'))",
    "sklearn-testing": "from sklearn.utils._testing import "
                       "assert_run_python_script_without_output as run; "
                       "return (run, (f'open({OUT!r} + \"/sktest\", \"w\")',))",
    "copyfile": "import shutil; return (shutil.copyfile, (SRC, f'{OUT}/copied'))",
}  # fmt: skip

MAKER = """\
import sys, gitml
OUT, SRC = sys.argv[1], sys.argv[2]
{classes}
for tag, cls in PAYLOADS.items():
    with gitml.start_run(name=f"gadget-{{tag}}", params={{"gadget": tag}}) as run:
        run.log_metric("accuracy", 0.99)
        run.log_model(cls(), "model.pkl")
        print(tag, run.id)
"""


def _maker_source():
    classes, names = [], {}
    for i, (tag, body) in enumerate(GADGETS.items()):
        classes.append(f"class G{i}:\n    def __reduce__(self):\n        {body}\n")
        names[tag] = f"G{i}"
    payloads = "PAYLOADS = {" + ", ".join(f"{t!r}: {c}" for t, c in names.items()) + "}"
    return MAKER.format(classes="\n".join(classes) + payloads)


@pytest.fixture
def gadgets(project, tmp_path):
    """Every gadget logged as a run's model.pkl and committed; returns (root, out, runs)."""
    root, out = project.root, tmp_path / "outside"
    out.mkdir()
    src = out / "inner.pkl"  # a plain pickle that itself would leave a witness when loaded

    class Inner:
        def __reduce__(self):
            return (open, (str(out / "nested"), "w"))

    src.write_bytes(pickle.dumps(Inner()))
    (root / "make.py").write_text(_maker_source())
    done = subprocess.run([sys.executable, "make.py", str(out), str(src)], cwd=root,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = dict(line.split() for line in done.stdout.splitlines() if line.split()[0] in GADGETS)
    made = done.stdout
    assert set(runs) == set(GADGETS), made
    commit_all(root, "gadgets")
    return root, out, runs


def _witnesses(out):
    return sorted(p.name for p in out.iterdir() if p.name != "inner.pkl")


def test_every_gadget_outside_the_allow_list_is_found_and_never_run(gadgets, tmp_path):
    root, out, runs = gadgets
    done = gitml(root, "check", "--format", "json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    unsafe = [f for f in report["findings"] if f["rule"] == "unsafe-pickle"]
    found = {f["detail"] for f in unsafe}
    for expected in ("code.InteractiveInterpreter.runsource", "code.InteractiveConsole.push",
                     "timeit.timeit", "cProfile.run", "pydoc.pipepager", "builtins.exec",
                     "subprocess.Popen", "numpy.memmap", "numpy.save", "numpy.load",
                     "joblib.numpy_pickle.load", "pandas.read_pickle",
                     "sklearn.datasets._svmlight_format_io.dump_svmlight_file",
                     "pandas.core.generic.NDFrame.to_csv", "shutil.copyfile",
                     "sklearn.utils._testing.assert_run_python_script_without_output"):  # fmt: skip
        assert expected in found, f"{expected} not reported; found {sorted(found)}"
    assert len(GADGETS) >= 10
    print(f"\n{len(GADGETS)} gadgets, {len(found)} distinct globals reported")

    # Loading any of them directly, with no scan first, is refused by the loader itself.
    from gitml.data import cache_path

    for record in (root / ".gitml/runs").glob("*/run.toml"):
        outputs = tomllib.loads(record.read_text()).get("outputs", {})
        if "model.pkl" in outputs:
            with pytest.raises(UnsafeModelError):
                load_model(cache_path(root, outputs["model.pkl"]["md5"]))

    # register (signature inference), then serve / predict / watch's load of model@version
    from gitml.registry import versions as registry
    from gitml.repo import Repo
    from gitml.serving.loading import ModelLoadError, load

    repo = Repo(root)
    for tag, run_id in runs.items():
        registry.register(repo, run_id, f"g-{tag}")
        with pytest.raises(ModelLoadError, match="refusing to load"):
            load(repo, f"g-{tag}@1")
    served = gitml(root, "serve", "g-runsource@1", "--port", "0")
    assert served.returncode == 2 and "refusing to load" in served.stderr
    (root / "rows.csv").write_text("a\n1\n")
    predicted = gitml(root, "predict", "g-timeit@1", "rows.csv", "-o", str(tmp_path / "p.csv"))
    assert predicted.returncode == 2 and "refusing to load" in predicted.stderr
    _, pushed = push_to_new_origin(root, tmp_path)
    assert pushed.returncode != 0 and "push refused" in pushed.stderr
    assert "[unsafe-pickle]" in pushed.stderr
    assert _witnesses(out) == [], "a gadget ran"


def _fitted():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y),
        "logistic": LogisticRegression(max_iter=500).fit(X.to_numpy(), y),
        "boosting": GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y),
        "hist-boosting": HistGradientBoostingClassifier(max_iter=5).fit(X, y),
    }, X


COMPRESSIONS = [0, 3, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)]


def test_real_fitted_models_check_clean_and_load_in_every_compression(tmp_path):
    models, X = _fitted()
    checked = 0
    for name, model in models.items():
        for compress in COMPRESSIONS:
            path = tmp_path / f"{name}.joblib"
            joblib.dump(model, path, compress=compress)
            assert scan_file(path, "joblib", path.name) == [], (name, compress)
            loaded = load_model(path)
            assert (loaded.predict(X.to_numpy() if name == "logistic" else X)
                    == model.predict(X.to_numpy() if name == "logistic" else X)).all()  # fmt: skip
            checked += 1
    assert checked == len(models) * len(COMPRESSIONS) == 35


def test_trusted_types_let_a_reviewed_global_through(tmp_path):
    from functools import partial

    model = make_pipeline(StandardScaler())
    model.steps.append(("round", _Rounder(partial(round, ndigits=1))))
    buf = io.BytesIO()
    joblib.dump(model, buf)
    path = tmp_path / "m.joblib"
    path.write_bytes(buf.getvalue())
    details = {i.detail for i in scan_file(path, "joblib", path.name)}
    assert "functools.partial" in details and "builtins.round" in details
    with pytest.raises(UnsafeModelError, match="refusing to load"):
        load_model(path)
    trusted = ["functools.partial", "builtins.round", "tests.check.test_allowlist.*"]
    assert load_model(path, trusted=trusted).steps[-1][0] == "round"


class _Rounder:
    def __init__(self, func):
        self.func = func


def test_register_reads_the_signature_without_unpickling(trained, monkeypatch):
    from gitml.check import facts
    from gitml.registry import versions as registry

    repo, runs = trained

    def never(*args, **kwargs):
        raise AssertionError("the model file was unpickled")

    monkeypatch.setattr("gitml.serving.models.load_model", never)
    static = registry.register(repo, runs[0], "read")["signature"]
    assert static["classes"] == [0, 1, 2] and static["output"] == {"type": "long", "shape": [-1]}
    assert [c["name"] for c in static["inputs"]][:2] == ["sepal length (cm)", "sepal width (cm)"]
    monkeypatch.undo()
    monkeypatch.chdir(repo.root)
    monkeypatch.setattr(facts, "model_facts", lambda *a: None)  # the loading path, for reference
    loaded = registry.register(repo, runs[0], "loaded")["signature"]
    assert static == loaded


WATCHED = """\
import code, gitml

class Gadget:
    def __reduce__(self):
        source = "open({witness!r}, 'w')"
        return (code.InteractiveInterpreter.runsource, (code.InteractiveInterpreter(), source))

with gitml.start_run("evil") as run:
    run.log_input("data.csv")
    run.log_metric("accuracy", 0.9)
    run.log_model(Gadget(), "model.pkl")
"""


def test_watch_never_runs_a_gadget_it_was_told_to_keep_trained(project, tmp_path):
    root, out = project.root, tmp_path / "outside"
    out.mkdir()
    frame = load_iris(as_frame=True).frame
    frame.to_csv(root / "data.csv", index=False)
    (root / "train.py").write_text(WATCHED.format(witness=str(out / "watch")))
    done = gitml(root, "run", "--", sys.executable, "train.py")
    assert done.returncode == 0, done.stderr
    commit_all(root, "a champion that is a gadget")
    run_id = tomllib.loads((root / "metrics.toml").read_text())["run"]
    assert gitml(root, "model", "register", run_id, "g").returncode == 0
    promoted = gitml(root, "model", "promote", "g", "1", "--allow-findings", "-m", "sandbox")
    assert promoted.returncode == 0, promoted.stderr  # promoting never loads it
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    frame.sample(60, random_state=0).to_csv(incoming / "new.csv", index=False)
    watched = gitml(root, "watch", str(incoming), "--model", "g@production", "--once",
                    "--retrain", "always", "--target", "target")  # fmt: skip
    assert watched.returncode != 0 and "refusing to load" in watched.stdout + watched.stderr
    assert _witnesses(out) == [], "watch ran the gadget"
