"""Drift figures against scipy, detection power and false positives on known shifts, and the CLI."""

import json
import shutil
import tomllib

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from gitml.monitoring import drift
from gitml.monitoring.profile import profile_column, profile_frame, read_profile, write_profile
from tests.helpers import gitml, run_ok


def _check(reference, current, settings=None):
    ref = drift.Reference("reference", "test", frame=reference)
    return drift.compare(None, ref, current, "current", settings or drift.Settings())


def _by_feature(report):
    return {f.feature: f for f in report.features}


def test_numeric_figures_match_scipy_on_the_same_samples():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 3000)
    cur = rng.normal(0.3, 1.2, 2000)
    f = _by_feature(_check(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})))["x"]
    ks = stats.ks_2samp(ref, cur)
    assert f.ks == pytest.approx(ks.statistic, abs=1e-12)
    assert f.ks_p_value == pytest.approx(ks.pvalue, rel=1e-9)
    assert f.wasserstein == pytest.approx(stats.wasserstein_distance(ref, cur) / ref.std())
    edges = np.quantile(ref, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    r = np.histogram(ref, edges)[0] / len(ref)
    c = np.histogram(cur, edges)[0] / len(cur)
    assert f.psi == pytest.approx(float(np.sum(rel_entr(c, r) + rel_entr(r, c))), rel=1e-6)
    assert f.jensenshannon == pytest.approx(jensenshannon(r, c, base=2), rel=1e-6)
    assert (f.method, f.drifted) == ("wasserstein", True)


def test_categorical_figures_match_scipy():
    rng = np.random.default_rng(1)
    ref = pd.Series(rng.choice(["a", "b", "c"], 4000, p=[0.5, 0.3, 0.2]))
    cur = pd.Series(rng.choice(["a", "b", "c", "d"], 3000, p=[0.3, 0.3, 0.3, 0.1]))
    f = _by_feature(_check(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})))["x"]
    table = pd.crosstab(np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref, cur])
    assert f.chisquare_p_value == pytest.approx(stats.chi2_contingency(table).pvalue)
    r = table.iloc[0].to_numpy() / len(ref)
    c = table.iloc[1].to_numpy() / len(cur)
    assert f.jensenshannon == pytest.approx(jensenshannon(r, c, base=2), rel=1e-6)
    r_clip, c_clip = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
    assert f.psi == pytest.approx(float(np.sum((c_clip - r_clip) * np.log(c_clip / r_clip))))
    assert f.new_categories == pytest.approx((cur == "d").mean())
    assert f.drifted and "new categories" in f.reason


def test_a_profile_stands_in_for_the_raw_reference(tmp_path):
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"x": rng.gamma(2.0, 1.5, 20000), "k": rng.choice(list("pqr"), 20000)})
    current = pd.DataFrame({"x": rng.gamma(2.2, 1.5, 5000), "k": rng.choice(list("pqrs"), 5000)})
    write_profile(tmp_path / "p.parquet", profile_frame(reference))
    profiles = read_profile(tmp_path / "p.parquet")
    assert profiles["x"].count == 20000 and len(profiles["x"].quantiles) == 201
    exact = _by_feature(_check(reference, current))
    stored = drift.Reference("p", "t", profiles=profiles)
    profiled = _by_feature(drift.compare(None, stored, current, "c", drift.Settings()))
    assert profiled["x"].ks == pytest.approx(exact["x"].ks, abs=0.01)
    assert profiled["x"].wasserstein == pytest.approx(exact["x"].wasserstein, rel=0.03)
    assert profiled["x"].psi == pytest.approx(exact["x"].psi, abs=0.01)
    assert profiled["k"].chisquare_p_value == pytest.approx(exact["k"].chisquare_p_value)
    assert [f.drifted for f in profiled.values()] == [f.drifted for f in exact.values()]


def _rate(reference, make_current, repeats):
    flagged = 0
    for i in range(repeats):
        report = _check(reference, make_current(np.random.default_rng(100 + i)))
        flagged += bool(report.drifted)
    return flagged / repeats


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "shift", "method"),
    [(500, 500, 0.5, "ks"), (20000, 5000, 0.25, "wasserstein")],
    ids=["small: KS p-value", "large: Wasserstein distance"],
)
def test_false_positives_and_power_on_known_shifts(n_ref, n_cur, shift, method):
    reference = pd.DataFrame({"x": np.random.default_rng(0).normal(0, 1, n_ref)})

    def same(rng):
        return pd.DataFrame({"x": rng.normal(0, 1, n_cur)})

    def shifted(rng):
        return pd.DataFrame({"x": rng.normal(shift, 1, n_cur)})

    assert _check(reference, same(np.random.default_rng(1))).features[0].method == method
    false_positives = _rate(reference, same, 200)
    power = _rate(reference, shifted, 50)
    # KS at p < 0.05 flags about 5% of same-distribution samples by construction; the distance
    # rule does not grow with the sample, so it flags none.
    assert false_positives <= (0.09 if method == "ks" else 0.0), false_positives
    assert power >= 0.95, power


def test_p_values_flag_trivial_shifts_on_large_samples_and_distances_do_not():
    """Why auto switches to distances above 1,000 reference rows (evidently issue #50)."""
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    current = pd.DataFrame({"x": rng.normal(0.03, 1, 200_000)})  # 3% of a std: no real drift
    ks = _check(reference, current, drift.Settings(method="ks")).features[0]
    auto = _check(reference, current).features[0]
    assert ks.drifted and ks.statistic < 1e-6
    assert auto.method == "wasserstein" and not auto.drifted and auto.statistic < 0.05


def test_missing_values_and_per_feature_settings():
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 3000), "b": rng.normal(0, 1, 3000)})
    current = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0.4, 1, 2000)})
    current.loc[:299, "a"] = np.nan
    settings = drift.Settings(features={"b": {"threshold": 0.9}})
    found = _by_feature(_check(reference, current, settings))
    assert found["a"].drifted and found["a"].reason == "missing 15.0% (reference 0.0%)"
    assert not found["b"].drifted and found["b"].threshold == 0.9
    assert profile_column("t", pd.Series(pd.to_datetime(["2026-01-01"]))) is None


TRAIN = (
    "import gitml, pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "with gitml.start_run() as run:\n"
    "    run.log_input('train.csv', profile=True)\n"
    "    data = pd.read_csv('train.csv')\n"
    "    model = LogisticRegression().fit(data[['x', 'y']], data['label'])\n"
    "    run.log_model(model, 'model.pkl')\n"
)


def test_cli_against_a_runs_stored_profile_without_the_raw_data(project, tmp_path):
    rng = np.random.default_rng(5)
    n = 4000
    train = pd.DataFrame({"x": rng.normal(0, 1, n), "y": rng.normal(5, 2, n),
                          "city": rng.choice(["lyon", "oslo"], n)})  # fmt: skip
    train["label"] = (train["x"] + rng.normal(0, 0.5, n) > 0).astype(int)
    train.to_csv(project.root / "train.csv", index=False)
    (project.root / "train.py").write_text(TRAIN)
    run_ok(project.root, "run", "--", "python", "train.py")
    record = tomllib.loads(next((project.root / ".gitml/runs").glob("*/run.toml")).read_text())
    run_id = record["id"]
    assert record["inputs"]["train.csv"]["profile"] == "profiles/train.csv.parquet"
    # The raw training data is gone: the profile alone is the reference.
    (project.root / "train.csv").unlink()
    shutil.rmtree(project.root / ".dvc" / "cache")
    same = train.sample(2000, random_state=1).drop(columns="label")
    same.to_csv(tmp_path / "same.csv", index=False)
    shifted = same.assign(y=same["y"] + 1.0)
    shifted.to_parquet(tmp_path / "shifted.parquet")

    done = gitml(project.root, "drift", "-r", run_id, "-c", str(tmp_path / "same.csv"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "profile of train.csv" in done.stdout and "no drift in 3 features" in done.stdout
    done = gitml(project.root, "drift", "-r", run_id, "-c", str(tmp_path / "shifted.parquet"),
                 "--format", "json")  # fmt: skip
    assert done.returncode == 1, done.stderr
    payload = json.loads(done.stdout)
    assert payload["drifted"] == ["y"]
    assert {f["feature"]: f["method"] for f in payload["features"]}["city"] == "jensenshannon"
    reports = sorted((project.root / ".gitml/monitor" / run_id).glob("drift-*.toml"))
    assert len(reports) == 2
    summary = tomllib.loads(reports[-1].read_text())
    assert summary["drifted"] == ["y"] and summary["rows"] == {"reference": n, "current": 2000}
    detail = pd.read_parquet(reports[-1].with_name(summary["detail"]))
    assert detail.set_index("feature").loc["y", "wasserstein"] > 0.4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-r", "ref.csv", "-c", "nope.csv"],
         "gitml: error: --current: nope.csv: no such file (or give requests:<model>)"),
        (["-r", "nope.csv", "-c", "ref.csv"], "gitml: error: --reference: nope.csv: no such file"),
        (["-r", "ref.csv", "-c", "ref.csv", "--feature", "z"],
         "gitml: error: --current: ref.csv: no column 'z'"),
        (["-r", "ref.csv", "-c", "requests:nobody"],
         "gitml: error: --current: requests:nobody: model 'nobody' has no logged requests"),
    ],
    ids=["no current", "no reference", "no column", "no requests"],
)  # fmt: skip
def test_bad_arguments_are_one_line(project, args, message):
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(project.root / "ref.csv", index=False)
    done = gitml(project.root, "drift", *args)
    assert (done.returncode, done.stderr.strip()) == (2, message)


PEAK = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "assert done.returncode in (0, 1), done.stderr\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


@pytest.mark.slow
def test_raw_parquet_files_are_compared_a_column_at_a_time(project, tmp_path):
    """Peak memory follows one column, not the file: 40 columns cost about what 5 do."""
    import subprocess
    import sys

    rng = np.random.default_rng(3)
    peaks = {}
    for width in (5, 40):
        for side, shift in (("ref", 0.0), ("cur", 0.2)):
            frame = pd.DataFrame({f"f{i}": rng.normal(shift, 1, 100_000) for i in range(width)})
            frame.to_parquet(tmp_path / f"{side}{width}.parquet")
        argv = [
            sys.executable,
            "-m",
            "gitml",
            "drift",
            "-r",
            str(tmp_path / f"ref{width}.parquet"),
            "-c",
            str(tmp_path / f"cur{width}.parquet"),
            "--no-save",
            "--format",
            "json",
        ]
        done = subprocess.run([sys.executable, "-c", PEAK, *argv], cwd=project.root,
                              capture_output=True, text=True, check=True)  # fmt: skip
        peaks[width] = int(done.stdout) / 1024
    # Both sides whole would be 2 x 35 columns x 0.8 MB = 56 MB more for the wider files.
    print(f"\npeak RSS (MiB) by number of columns: {peaks}")
    assert peaks[40] < peaks[5] + 28, peaks
    done = gitml(
        project.root,
        "drift",
        "-r",
        str(tmp_path / "ref40.parquet"),
        "-c",
        str(tmp_path / "cur40.parquet"),
        "--no-save",
        "--format",
        "json",
    )
    assert done.returncode == 1, done.stderr  # drift found
    report = json.loads(done.stdout)
    assert len(report["features"]) == 40 and len(report["drifted"]) == 40
