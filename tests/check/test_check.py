"""`gitml check` on real repositories: real models, real DVC caches and remotes, real git hooks."""

import json
import os
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from gitml.data import cache_path
from tests.helpers import commit_all, dvc, git, gitml, push_to_new_origin, run_ok

SARIF_SCHEMA = Path(__file__).parents[1] / ".cache" / "sarif-schema-2.1.0.json"

# A "model" whose unpickling runs a shell command; the command would leave a file behind.
EVIL_TRAIN = """\
import os
import gitml

class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))

with gitml.start_run(name="evil", params={"kind": "evil"}) as run:
    run.log_metric("accuracy", 0.99)
    run.log_model(Payload(), "model.pkl")
"""


def _check(root, *args):
    done = gitml(root, "check", *args)
    assert done.returncode in (0, 1), f"gitml check {args}: {done.stdout}{done.stderr}"
    return done


def _findings(root, *args):
    done = _check(root, "--format", "json", *args)
    return done.returncode, json.loads(done.stdout)


def _registry(root, name):
    return tomllib.loads((root / f".gitml/models/{name}.toml").read_text())


def test_a_clean_repository_checks_clean_and_unchanged_objects_are_not_re_read(served):
    first = _check(served)
    assert first.returncode == 0, first.stdout
    last = first.stdout.strip().splitlines()[-1]
    assert last.startswith("gitml check working tree: ok: 0 error(s), 0 warning(s), 0 note(s)")
    code, report = _findings(served)
    assert code == 0 and report["findings"] == [] and report["failed"] is False
    counts = report["counts"]
    # prepare and two trained runs; the prepared data and two models (iris v1 and v2)
    assert counts["runs"] == 3 and counts["model_files"] == 2 and counts["artifacts"] == 3
    assert counts["hashed"] == 0, "the first check left every verdict in the hash cache"
    assert counts["hash_cache_hits"] == counts["artifacts"]
    for rev in (["--rev", "HEAD"], ["--all-history"]):
        code, report = _findings(served, *rev)
        assert code == 0 and report["findings"] == [], report
    (served / ".gitml/cache/check.sqlite").write_bytes(b"not a database")  # a damaged cache
    code, report = _findings(served)
    assert code == 0 and report["counts"]["hashed"] == report["counts"]["artifacts"]


def test_flipped_bytes_in_a_cache_object_are_reported_with_the_md5_mismatch(served):
    assert _check(served).returncode == 0  # every object verified and remembered
    version = _registry(served, "iris")["versions"][1]
    obj = cache_path(served, version["md5"])
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stat = obj.stat()
    obj.chmod(0o644)
    obj.write_bytes(bytes(data))
    os.utime(obj, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: only ctime moves
    code, report = _findings(served)
    assert code == 1
    (finding,) = report["findings"]
    assert finding["rule"] == "artifact-corrupt" and finding["level"] == "error"
    assert finding["file"] == ".gitml/models/iris.toml" and finding["subject"] == "iris v2"
    assert finding["detail"] == version["md5"]
    import hashlib

    actual = hashlib.md5(bytes(data)).hexdigest()
    assert f"its bytes hash to {actual}" in finding["message"]
    assert report["counts"]["hashed"] == 1, "only the changed object was read again"
    line = (served / ".gitml/models/iris.toml").read_text().splitlines()[finding["line"] - 1]
    assert version["md5"] in line
    # Serving and promoting the corrupted version are refused as well.
    served_out = gitml(served, "serve", "iris@production", "--port", "0")
    assert served_out.returncode == 2 and "refusing to load" in served_out.stderr
    assert "DVC cache object is corrupted" in served_out.stderr
    promoted = gitml(served, "model", "promote", "iris", "2", "--to", "staging")
    assert promoted.returncode == 1 and "[artifact-corrupt]" in promoted.stderr


@pytest.fixture
def evil(project):
    """A run whose model file runs `touch PWNED` when unpickled, registered as evil v1."""
    root = project.root
    (root / "train.py").write_text(EVIL_TRAIN)
    run_ok(root, "run", "--", sys.executable, "train.py")
    commit_all(root, "evil run")
    run = tomllib.loads((root / "metrics.toml").read_text())["run"]
    registered = gitml(root, "model", "register", run, "evil")
    assert registered.returncode == 0, registered.stderr
    assert "no signature for model.pkl: not loaded" in registered.stderr
    assert "posix.system" in registered.stderr
    assert not (root / "PWNED").exists(), "registering never loads a model the scan flags"
    return root


def test_a_model_calling_os_system_is_reported_and_its_promotion_refused(evil, tmp_path):
    code, report = _findings(evil)
    assert code == 1
    unsafe = [f for f in report["findings"] if f["rule"] == "unsafe-pickle"]
    assert len(unsafe) == 1, report["findings"]
    (finding,) = unsafe
    assert finding["file"] == ".gitml/models/evil.toml"
    assert finding["subject"] == "evil v1" and finding["detail"] == "posix.system"
    assert "evil v1 (model.pkl, md5 " in finding["message"]
    assert "loading it would import and call posix.system" in finding["message"]
    assert "(and 2 more reference(s))" in finding["message"]  # the run's output and model.pkl.dvc
    table = _check(evil)
    assert ".gitml/models/evil.toml:" in table.stdout and "[unsafe-pickle]" in table.stdout

    refused = gitml(evil, "model", "promote", "evil", "1")
    assert refused.returncode == 1
    assert "model evil: v1 not promoted" in refused.stderr and "posix.system" in refused.stderr
    assert "--allow-findings" in refused.stderr
    assert _registry(evil, "evil")["aliases"] == {}
    assert git(evil, "status", "--porcelain") == ""

    served = gitml(evil, "serve", "evil@1", "--port", "0")
    assert served.returncode == 2 and "refusing to load" in served.stderr

    origin, pushed = push_to_new_origin(evil, tmp_path)
    assert pushed.returncode != 0
    assert "gitml pre-push: push refused" in pushed.stderr and "posix.system" in pushed.stderr
    assert git(origin, "branch") == "", "nothing reached the git remote"

    allowed = gitml(evil, "model", "promote", "evil", "1", "--allow-findings", "-m", "sandbox")
    assert allowed.returncode == 0, allowed.stderr
    event = _registry(evil, "evil")["history"][-1]
    assert event["action"] == "promote" and event["allowed_findings"] == [
        "unsafe-pickle: posix.system"
    ]
    assert not (evil / "PWNED").exists(), "no check, refusal or promotion loaded the model"


def test_sarif_output_validates_against_the_sarif_2_1_0_schema(evil):
    import jsonschema

    if not SARIF_SCHEMA.is_file():
        if os.environ.get("CI"):
            pytest.fail("tests/setup.sh did not fetch the SARIF schema")
        pytest.skip("run tests/setup.sh to fetch the SARIF 2.1.0 schema")
    schema = json.loads(SARIF_SCHEMA.read_text())
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    out = evil / "gitml.sarif"
    done = gitml(evil, "check", "--format", "sarif", "--output", str(out))
    assert done.returncode == 1 and done.stdout == ""
    assert "gitml check working tree: FAILED" in done.stderr
    log = json.loads(out.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    (result,) = [r for r in run["results"] if r["ruleId"] == "unsafe-pickle"]
    assert rules[result["ruleIndex"]]["id"] == "unsafe-pickle"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == ".gitml/models/evil.toml"
    assert location["region"]["startLine"] > 1 and result["level"] == "error"
    # A clean repository is a valid log too, with no results.
    clean = evil / "clean.sarif"
    git(evil, "rm", "-q", "-r", ".gitml/models")
    commit_all(evil, "drop the registry")
    (evil / ".gitml/runs").rename(evil / "runs-aside")
    (evil / "model.pkl.dvc").unlink()
    done = gitml(evil, "check", "-f", "sarif", "-o", str(clean))
    assert done.returncode == 0, done.stderr
    assert list(validator.iter_errors(json.loads(clean.read_text()))) == []


def test_secrets_environment_schema_and_history(served, tmp_path):
    root = served
    config = root / ".gitml/config.toml"
    allow = '[tracking]\nallow_params = ["db_url"]'
    config.write_text(config.read_text().replace("[tracking]", allow))
    secret = "postgres://ml:" + "hunter2" + "@db.internal/feat"  # a password in a URL
    (root / "leak.py").write_text(
        "import gitml\n"
        f"with gitml.start_run(params={{'db_url': {secret!r}}}, tags={{'note': 'ok'}}) as run:\n"
        "    run.log_metric('accuracy', 0.5)\n"
    )
    run_ok(root, "run", "--", sys.executable, "leak.py")
    records = (root / ".gitml/runs").glob("*/run.toml")
    record = next(r for r in records if "db_url" in r.read_text())
    # Logging redacts a credential-shaped value even under an allowed name...
    assert 'db_url = "<redacted>"' in record.read_text()
    # ...but a record from an older gitml, or another tool, may hold one.
    record.write_text(record.read_text().replace('"<redacted>"', repr(secret).replace("'", '"')))
    leaked = commit_all(root, "a run that leaks a password")
    code, report = _findings(root, "--only", "secrets")
    assert code == 1
    (finding,) = report["findings"]
    assert finding["rule"] == "secret" and finding["detail"] == "params.db_url"
    assert "password in a URL" in finding["message"] and "hunter2" not in json.dumps(report)

    # The leaking run is deleted in a later commit: only --all-history still finds it.
    git(root, "rm", "-q", "-r", str(record.parent.relative_to(root)))
    git(root, "commit", "-q", "-m", "remove the leak")
    assert _findings(root, "--only", "secrets")[0] == 0
    code, report = _findings(root, "--all-history", "--only", "secrets")
    (finding,) = report["findings"]
    assert code == 1 and finding["commit"] == leaked

    # Serving with another scikit-learn major.minor than training is a warning.
    freeze = tmp_path / "serving.txt"
    freeze.write_text("numpy==1.19.5\nscikit-learn==0.24.2\n# comment\n-e git+https://x/y#egg=z\n")
    code, report = _findings(root, "--only", "environment", "--serving-env", str(freeze))
    assert code == 1
    mismatched = {(f["subject"], f["detail"]) for f in report["findings"]}
    # v2 is production and latest; the training run imported pandas, serving lacks it
    assert mismatched == {("iris v2", "scikit-learn"), ("iris v2", "numpy"), ("iris v2", "pandas")}
    by_package = {f["detail"]: f for f in report["findings"]}
    assert by_package["scikit-learn"]["level"] == "warning"
    assert "serving has 0.24.2" in by_package["scikit-learn"]["message"]
    assert "serving does not have it" in by_package["pandas"]["message"]

    # A schema break is named with its field; the committed tree (--rev) is still clean.
    record = next((root / ".gitml/runs").glob("*/run.toml"))
    record.write_text(record.read_text().replace('status = "finished"', 'status = "done"'))
    code, report = _findings(root, "--only", "schema")
    (finding,) = report["findings"]
    assert code == 1 and finding["rule"] == "schema"
    assert finding["file"] == record.relative_to(root).as_posix()
    assert finding["message"].startswith("field status:")
    assert _findings(root, "--only", "schema", "--rev", "HEAD")[0] == 0

    # A run folder left without its record (a write or import stopped half-way) is named.
    record.write_text(record.read_text().replace('status = "done"', 'status = "finished"'))
    stray = root / ".gitml/runs/20260101T000000Z-abcdef"
    stray.mkdir()
    shutil.copy(next((root / ".gitml/runs").glob("*/metrics.parquet")), stray)
    code, report = _findings(root, "--only", "schema")
    (finding,) = report["findings"]
    assert code == 1 and finding["rule"] == "record-integrity", finding
    assert finding["file"] == ".gitml/runs/20260101T000000Z-abcdef/metrics.parquet"
    assert "without a run.toml" in finding["message"]


def test_bad_arguments_are_one_line_errors(served):
    for args, needle in ((["--rev", "no-such-branch"], "--rev no-such-branch: not a commit"),
                         (["--only", "schema,bogus"], "bogus"),
                         (["--rev", "HEAD", "--all-history"], "not both")):  # fmt: skip
        done = gitml(served, "check", *args)
        assert done.returncode == 2, done.stdout
        assert needle in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_skops_untrusted_types_warn_until_the_team_trusts_them(project):
    pytest.importorskip("skops")
    root = project.root
    (root / "train.py").write_text(
        "import gitml\n"
        "from sklearn.datasets import load_wine\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "X, y = load_wine(return_X_y=True)\n"
        "with gitml.start_run() as run:\n"
        "    run.log_model(DecisionTreeClassifier(max_depth=2).fit(X, y), 'tree.skops',"
        " format='skops')\n"
    )
    run_ok(root, "run", "--", sys.executable, "train.py")
    commit_all(root, "skops tree")
    code, report = _findings(root, "--only", "models")
    assert code == 1
    (finding,) = report["findings"]
    assert finding["rule"] == "untrusted-skops-type" and finding["level"] == "warning"
    assert finding["detail"] == "sklearn.tree._tree.Tree"
    config = root / ".gitml/config.toml"
    trust = '\n[check]\ntrusted_types = ["sklearn.tree._tree.Tree"]\n'
    config.write_text(config.read_text() + trust)
    code, report = _findings(root, "--only", "models")
    assert code == 0 and report["findings"] == []


def test_objects_only_in_the_remote_pass_and_objects_nowhere_are_named(served, tmp_path):
    import shutil

    from gitml.data import cache_dir

    remote = tmp_path / "remote-of-this-test"
    # the embedded default remote is this machine's: it lives in .dvc/config.local
    dvc(served, "remote", "modify", "--local", "local", "url", str(remote))
    assert gitml(served, "push").returncode == 0
    shutil.rmtree(cache_dir(served))  # a fresh CI clone: nothing cached, all in the remote
    code, report = _findings(served, "--only", "artifacts,models")
    assert code == 0, report["findings"]
    # the two models were downloaded to be scanned; the data is only known to be in the remote
    assert report["counts"]["remote_only"] == 3 and report["counts"]["model_files"] == 2
    version = _registry(served, "iris")["versions"][0]
    assert cache_path(served, version["md5"]).is_file()

    # The remote's copy of a model is damaged: fetched to be scanned, it is found out.
    cache_path(served, version["md5"]).unlink()
    copy = remote / "files" / "md5" / version["md5"][:2] / version["md5"][2:]
    copy.chmod(0o644)
    copy.write_bytes(copy.read_bytes()[:-1] + b"?")
    copy.chmod(0o444)  # read-only, as DVC leaves objects it verified: DVC trusts it unread
    code, report = _findings(served, "--only", "artifacts,models")
    (finding,) = report["findings"]
    assert code == 1 and finding["rule"] == "artifact-corrupt" and finding["subject"] == "iris v1"
    assert "the remote's copy of object" in finding["message"]

    shutil.rmtree(remote)
    shutil.rmtree(cache_dir(served))
    code, report = _findings(served, "--only", "artifacts")
    assert code == 1
    missing = {f["detail"]: f for f in report["findings"]}
    assert set(missing) == {v["md5"] for v in _registry(served, "iris")["versions"]} | {
        next(iter(tomllib.loads(r.read_text())["outputs"].values()))["md5"]
        for r in (served / ".gitml/runs").glob("*/run.toml")
        if tomllib.loads(r.read_text()).get("name") == "prepare"
    }
    assert all(f["rule"] == "artifact-missing" for f in missing.values())


def test_a_serving_environment_unlike_training_warns_on_predict_and_stops_promotion(served):
    (served / "serving.txt").write_text("scikit-learn==0.24.2\nnumpy==1.19.5\npandas==1.1.5\n")
    config = served / ".gitml/config.toml"
    config.write_text(config.read_text() + '\n[check]\nserving_env = "serving.txt"\n')
    done = gitml(served, "predict", "iris@production", "iris.csv", "-o", "out.parquet")
    assert done.returncode == 0, done.stderr
    assert "gitml: warning: iris v2 was trained with scikit-learn " in done.stderr
    assert "serving has 0.24.2" in done.stderr and "[environment-mismatch]" in done.stderr
    assert (served / "out.parquet").is_file()
    refused = gitml(served, "model", "promote", "iris", "1", "--to", "staging")
    assert refused.returncode == 1 and "[environment-mismatch]" in refused.stderr
    assert "model iris: v1 not promoted: iris v1 was trained with scikit-learn" in refused.stderr


def test_findings_the_team_accepts_pass_and_show_as_dismissed_in_sarif(evil):
    import jsonschema

    config = evil / ".gitml/config.toml"
    config.write_text(config.read_text() + (
        '\n[[check.ignore]]\nrule = "unsafe-pickle"\nfile = ".gitml/models/*.toml"\n'
        'detail = "posix.system"\nreason = "a red-team fixture, never served"\n'))  # fmt: skip
    done = _check(evil)
    assert done.returncode == 0, done.stdout
    assert "0 error(s), 0 warning(s), 0 note(s), 1 accepted by [check] ignore" in done.stdout
    code, report = _findings(evil)
    (finding,) = report["findings"]
    assert code == 0 and finding["suppressed"] == "a red-team fixture, never served"
    out = evil / "accepted.sarif"
    assert gitml(evil, "check", "-f", "sarif", "-o", str(out)).returncode == 0
    log = json.loads(out.read_text())
    (result,) = log["runs"][0]["results"]
    assert result["suppressions"] == [
        {"kind": "external", "justification": "a red-team fixture, never served"}
    ]
    if SARIF_SCHEMA.is_file():
        schema = json.loads(SARIF_SCHEMA.read_text())
        assert list(jsonschema.Draft7Validator(schema).iter_errors(log)) == []
    # accepted in the committed config: promotion goes through without --allow-findings
    commit_all(evil, "accept the fixture")
    assert gitml(evil, "model", "promote", "evil", "1", "--to", "staging").returncode == 0
    # a rule that names another detail accepts nothing
    config.write_text(config.read_text().replace('detail = "posix.system"', 'detail = "x.y"'))
    assert _check(evil).returncode == 1
    assert not (evil / "PWNED").exists()
