"""Security: paths confined to the repository, secrets kept out of files, a token on the server."""

import json
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import gitml
from gitml import store
from gitml.errors import ArtifactError, SchemaError
from tests.helpers import commit_all, git
from tests.helpers import gitml as gitml_cli
from tests.http.test_serve import ROWS, Server, _records


def test_artifacts_must_stay_inside_the_repository(project, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    (project.root / "link.txt").symlink_to(outside)
    with gitml.start_run("paths") as run:
        with pytest.raises(ArtifactError, match="is outside the repository"):
            run.log_artifact(outside)
        with pytest.raises(ArtifactError, match="is outside the repository"):
            run.log_artifact(project.root / ".." / "secret.txt")
        with pytest.raises(ArtifactError, match=r"link\.txt: is a link to .*secret\.txt, outside"):
            run.log_artifact(project.root / "link.txt")


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "data/../../x", "~/x",
                                  "C:/x", "a\\..\\..\\b"])  # fmt: skip
def test_a_record_naming_a_path_outside_is_refused_on_read(project, path):
    with gitml.start_run("ok") as run:
        pass
    record = store.read_toml(project.run_dir(run.id) / "run.toml", kind="run")
    record["outputs"] = {path: {"md5": "0" * 32, "size": 1}}
    (project.run_dir(run.id) / "run.toml").write_bytes(store.dumps_toml(record))
    with pytest.raises(SchemaError, match="outputs"):
        store.read_toml(project.run_dir(run.id) / "run.toml", kind="run")


@pytest.mark.parametrize("patch", ["../../../outside.txt", "/etc/passwd", "sub/code.patch",
                                   ".hidden", "..", "a\\b"])  # fmt: skip
def test_a_record_naming_its_code_patch_outside_its_folder_is_refused(project, patch):
    """The UI shows, and `gitml reproduce` applies, the patch beside run.toml: a name only."""
    with gitml.start_run("ok") as run:
        pass
    record = store.read_toml(project.run_dir(run.id) / "run.toml", kind="run")
    record.setdefault("code", {"dirty": True})["patch"] = patch
    (project.run_dir(run.id) / "run.toml").write_bytes(store.dumps_toml(record))
    with pytest.raises(SchemaError, match=r"code\.patch"):
        store.read_toml(project.run_dir(run.id) / "run.toml", kind="run")
    record["code"]["patch"] = "code.patch"  # what gitml writes
    (project.run_dir(run.id) / "run.toml").write_bytes(store.dumps_toml(record))
    store.read_toml(project.run_dir(run.id) / "run.toml", kind="run")


def test_a_config_edit_cannot_carry_the_summary_outside_the_repository(project, tmp_path):
    """[tracking] summary_file is written on every finished run: it must stay in the repo."""
    settings = project.root / ".gitml" / "config.toml"
    original = settings.read_text()
    assert 'summary_file = "metrics.toml"' in original
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.root / "linked").symlink_to(outside)
    for value, says in (("../outside/metrics.toml", "is not a path inside the repository"),
                        (str(outside / "metrics.toml"), "is not a path inside the repository"),
                        ("linked/metrics.toml", "linked is a symlink")):  # fmt: skip
        settings.write_text(original.replace('"metrics.toml"', f"'{value}'"))
        done = gitml_cli(project.root, "run", "--", sys.executable, "-c", "pass")
        assert done.returncode == 2, done.stderr
        assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert list(outside.iterdir()) == [], f"{value}: written outside"
    for setting in ("capture_files", "inputs"):  # files a run reads are named inside it too
        edited = original.replace('capture_files = ["metrics.json", "metrics.toml"]', "")
        settings.write_text(edited.replace("[tracking]\n", f"[tracking]\n{setting} = ['../x']\n"))
        done = gitml_cli(project.root, "run", "--", sys.executable, "-c", "pass")
        assert done.returncode == 2, done.stderr
        assert f"tracking.{setting}.0: '../x' is not a path inside" in done.stderr, done.stderr
    runs = [p.name for p in project.runs_dir.iterdir()]
    assert len(runs) == 1, "the run behind the symlinked summary is kept (finished)"


def test_secret_looking_params_are_redacted_in_files_not_for_the_command(project):
    script = ("import gitml, json\n"
              "p = gitml.params({})\n"
              "open('seen.json', 'w').write(json.dumps(p))\n")  # fmt: skip
    (project.root / "train.py").write_text(script)
    params = ["-p", "api_key=abc123", "-p", "db.password=hunter2", "-p", "monkey=3",
              "-p", "sort_key=512", "-p", "token_budget=512"]  # fmt: skip
    done = gitml_cli(project.root, "run", *params, "--", "python", "train.py")
    assert done.returncode == 0, done.stderr
    record = next(project.runs_dir.glob("*/run.toml")).read_text()
    params = tomllib.loads(record)["params"]
    assert params["api_key"] == "<redacted>" and params["db.password"] == "<redacted>"
    assert params["monkey"] == 3 and params["sort_key"] == "<redacted>"
    assert params["token_budget"] == 512  # a setting that starts with a secret's word
    assert "abc123" not in record and "hunter2" not in record
    assert json.loads((project.root / "seen.json").read_text())["api_key"] == "abc123"
    config = project.config_path
    allow = '[tracking]\nallow_params = ["sort_key"]\n'
    config.write_text(config.read_text().replace("[tracking]\n", allow, 1))  # the template has one
    with gitml.start_run("allowed", params={"sort_key": 512, "secret": "x"}) as run:
        pass
    kept = store.read_toml(project.run_dir(run.id) / "run.toml", kind="run")["params"]
    assert kept == {"sort_key": 512, "secret": "<redacted>"}


def test_the_server_wants_the_bearer_token(served, monkeypatch):
    monkeypatch.setenv("GITML_SERVE_TOKEN", "s3cr3t-token")
    server = Server(served, "iris@production")
    try:
        assert server.get("/health")["version"] == 2  # liveness stays open
        status, body, headers = server.post("/predict", {"records": _records()})
        assert status == 401 and headers["www-authenticate"].startswith("Bearer")
        assert body["error"] == "authorization: send 'Authorization: Bearer <token>'"
        wrong = {"Authorization": "Bearer nope"}
        assert server.post("/predict", {"records": _records()}, headers=wrong)[0] == 401
        right = {"Authorization": "Bearer s3cr3t-token"}
        status, body, _ = server.post("/predict", {"records": _records()}, headers=right)
        assert status == 200 and len(body["predictions"]) == len(ROWS)
        assert "bearer token required" in server.log.read_text()
    finally:
        server.stop(signal.SIGKILL)
    assert os.environ["GITML_SERVE_TOKEN"] not in server.log.read_text()


@pytest.fixture
def linked(project, tmp_path):
    """A branch that commits `linkdir -> <outside>` and records naming files under it."""
    root, outside = project.root, tmp_path / "outside"
    outside.mkdir()
    (root / "keys.txt").write_text("ssh-ed25519 AAAA attacker\n")
    with gitml.start_run("honest") as run:
        ref = run.log_artifact(root / "keys.txt")
    commit_all(root, "an honest run")
    git(root, "checkout", "-q", "-b", "attack")
    (root / "linkdir").symlink_to(outside)
    evil = "20260101T000000Z-ee1ee1"
    record = store.read_toml(project.run_dir(run.id) / "run.toml", kind="run")
    record.update(id=evil, name="evil", outputs={"linkdir/authorized_keys": dict(ref)})
    project.run_dir(evil).mkdir(parents=True)
    (project.run_dir(evil) / "run.toml").write_bytes(store.dumps_toml(record))
    (root / "evil.dvc").write_text(
        f"outs:\n- md5: {ref['md5']}\n  size: {ref['size']}\n  path: linkdir/authorized_keys\n"
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "a symlinked directory and records under it")
    return root, outside, evil


def test_checkout_pull_and_post_checkout_never_write_through_a_symlinked_parent(linked):
    root, outside, evil = linked
    done = gitml_cli(root, "checkout", evil)
    assert done.returncode == 2, done.stderr
    assert "linkdir is a symlink" in done.stderr and "refusing to write" in done.stderr
    assert list(outside.iterdir()) == []

    done = gitml_cli(root, "pull")
    assert done.returncode == 2 and "linkdir is a symlink" in done.stderr, done.stderr
    assert list(outside.iterdir()) == []

    git(root, "checkout", "-q", "main")
    switched = subprocess.run(
        ["git", "checkout", "attack"], cwd=root, capture_output=True, text=True, check=False
    )  # fmt: skip (the post-checkout hook runs)
    assert switched.returncode == 0
    assert "linkdir is a symlink" in switched.stderr, switched.stderr
    assert list(outside.iterdir()) == [], "the post-checkout hook wrote through the link"
    assert (root / "linkdir").is_symlink()


@pytest.mark.parametrize("path", ["linkdir/x", "linkdir/sub/x", "../x", "/abs/x", "a/../../x"])
def test_safe_target_refuses_every_way_out(project, tmp_path, path):
    (project.root / "linkdir").symlink_to(tmp_path)
    with pytest.raises(ArtifactError, match="refusing to write"):
        store.safe_target(project.root, path)
    assert store.safe_target(project.root, "data/new/x") == project.root / "data/new/x"


AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example key


def test_secrets_by_value_never_reach_a_record_and_check_finds_old_ones(served, tmp_path):
    root = served
    values = {"aws_blob": AWS_SECRET, "pw": "hunter2", "dbpass": "tr0ub4dor&3"}
    script = tmp_path / "leak.py"  # outside the repository: only what gitml writes is judged
    script.write_text(
        "import gitml\n"
        f"with gitml.start_run('leaky', params={values!r}) as run:\n"
        "    run.log_metric('accuracy', 0.5)\n"
    )
    done = gitml_cli(root, "run", "--", sys.executable, str(script))
    assert done.returncode == 0, done.stderr
    commit_all(root, "a run that tried to log secrets")
    record = next(
        r for r in (root / ".gitml/runs").glob("*/run.toml") if "aws_blob" in r.read_text()
    )
    params = tomllib.loads(record.read_text())["params"]
    assert params == {"aws_blob": "<redacted>", "pw": "<redacted>", "dbpass": "<redacted>"}
    report = tmp_path / "report.html"
    assert gitml_cli(root, "report", "-o", str(report)).returncode == 0
    history = git(root, "log", "-p", "--all")
    for secret in values.values():
        for text in (history, report.read_text(), (root / "metrics.toml").read_text()):
            assert secret not in text

    # A record from another tool holding one anyway is found, in history too.
    record.write_text(record.read_text().replace('aws_blob = "<redacted>"',
                                                 f'aws_blob = "{AWS_SECRET}"'))  # fmt: skip
    commit_all(root, "an imported run that leaks a key")
    git(root, "rm", "-q", "-r", str(record.parent.relative_to(root)))
    git(root, "commit", "-q", "-m", "remove it again")
    done = gitml_cli(root, "check", "--all-history", "--only", "secrets", "--format", "json")
    assert done.returncode == 1
    (finding,) = json.loads(done.stdout)["findings"]
    assert finding["detail"] == "params.aws_blob" and "high-entropy" in finding["message"]
    assert AWS_SECRET not in done.stdout


def test_no_false_positives_on_ids_hashes_and_estimator_params():
    import hashlib
    import uuid

    from sklearn.utils.discovery import all_estimators

    from gitml.secrets import secret_kind

    judged = 0
    for i in range(2000):
        digest = str(i).encode()
        md5 = hashlib.md5(digest).hexdigest()
        run_id = f"20261130T0059{i % 60:02d}Z-{md5[:6]}"
        for value in (md5, hashlib.sha1(digest).hexdigest(), hashlib.sha256(digest).hexdigest(),
                      str(uuid.uuid4()), uuid.uuid4().hex, run_id):  # fmt: skip
            for name in ("commit", "data_md5", "run_id", "dataset_version", "seed_hash"):
                assert secret_kind(name, value) is None, (name, value)
                judged += 1
    for _, estimator in all_estimators():
        try:
            params = estimator().get_params()
        except TypeError:
            continue  # needs arguments (meta-estimators)
        for name, value in params.items():
            assert secret_kind(name, str(value)) is None, (estimator.__name__, name, value)
            judged += 1
    import sklearn

    for path in Path(sklearn.__file__).parent.rglob("*"):  # real paths, absolute and relative
        for value in (str(path), path.relative_to(Path(sklearn.__file__).parents[1]).as_posix()):
            assert secret_kind("data_path", value) is None, value
            judged += 1
    assert judged > 60_000
    print(f"\n{judged} ids, hashes and estimator params judged: 0 flagged")


def test_a_committed_symlink_for_gitmls_own_folders_is_refused(project, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    runs = project.runs_dir
    if runs.exists():
        runs.rmdir()
    runs.symlink_to(outside)
    for args in (["runs"], ["status"], ["model", "list"]):
        done = gitml_cli(project.root, *args)
        assert done.returncode == 2 and ".gitml/runs: is a symlink" in done.stderr, done.stderr
    code = "import gitml\nwith gitml.start_run('x'): pass"
    done = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode != 0 and "is a symlink" in done.stderr
    assert list(outside.iterdir()) == []


def test_a_secret_on_the_command_line_is_redacted_and_reproduce_says_why(project, tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import gitml\nwith gitml.start_run() as run:\n"
                      "    run.log_metric('accuracy', 0.5)\n")  # fmt: skip
    done = gitml_cli(project.root, "run", "--", sys.executable, str(script), "--password",
                     "hunter2", f"--aws-blob={AWS_SECRET}", "--lr", "0.1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = next(project.runs_dir.glob("*/run.toml"))
    command = tomllib.loads(record.read_text())["command"]
    assert command[-5:] == ["--password", "<redacted>", "--aws-blob=<redacted>", "--lr", "0.1"]
    commit_all(project.root, "a run with a secret on its command line")
    done = gitml_cli(project.root, "reproduce", record.parent.name)
    said = done.stdout + done.stderr
    assert done.returncode == 2 and "pass secrets through the environment" in said
