import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gitml import __version__
from gitml.cli.main import COMMANDS, HIDDEN, all_commands, main
from tests.helpers import git, gitml


def _commands():
    return sorted(all_commands().items())


@pytest.mark.parametrize(("name", "command"), _commands(), ids=[n for n, _ in _commands()])
def test_every_command_has_help_with_an_example(name, command, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: gitml {name}")
    assert "Example:" in out and f"gitml {name}" in out.split("Example:")[1]
    assert command.help and len(command.help.splitlines()[0]) < 100


def test_group_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, command in all_commands().items():
        assert (f"  {name} " in out) != command.hidden, name
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gitml {__version__}"


def test_the_lazy_command_table_matches_the_commands_themselves():
    """`gitml --help` reads the table; each row must say what the command's own help says."""
    commands = all_commands()
    assert sorted(commands) == sorted(COMMANDS) and len(commands) > 20
    for name, command in commands.items():
        assert command.name == name
        assert COMMANDS[name][1] == command.get_short_help_str(limit=1000), name
        assert (name in HIDDEN) == command.hidden, name
        module = sys.modules[f"gitml.cli.{COMMANDS[name][0]}"]
        assert command in module.COMMANDS, f"{name} is not in {module.__name__}.COMMANDS"
    listed = {c.name for m in {sys.modules[f"gitml.cli.{v[0]}"] for v in COMMANDS.values()}
              for c in m.COMMANDS}  # fmt: skip
    assert listed == set(COMMANDS)


def test_help_imports_no_command_module():
    code = "import sys; from gitml.cli.main import main; main(['--help']); " + (
        "print(sorted(m for m in sys.modules if m.startswith('gitml.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout.strip().splitlines()[-1]
    for module in {v[0] for v in COMMANDS.values()}:
        assert f"'gitml.cli.{module}'" not in loaded, loaded


def test_git_subcommand_entry_point(project):
    done = subprocess.run(["git", "ml", "--version"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip("git-ml is not on PATH (package not installed as scripts)")
    assert done.stdout.strip() == f"gitml {__version__}"


def test_unknown_command_and_option_are_one_line(capsys):
    assert main(["bogus"]) == 2
    assert capsys.readouterr().err.strip() == "gitml: error: No such command 'bogus'."
    assert main(["runs", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gitml runs: error: No such option '--bogus'") and err.count("\n") == 1


def test_outside_a_repository(tmp_path):
    done = gitml(tmp_path, "runs")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"gitml: error: {tmp_path}: not inside a git repository; "
        "run `git init` first or `gitml init --git`"
    )
    git(tmp_path, "init", "-q")
    done = gitml(tmp_path, "runs")
    assert (
        done.stderr.strip()
        == f"gitml: error: {tmp_path}: no gitml project here; run `gitml init` first"
    )


def test_debug_shows_the_traceback(tmp_path):
    done = gitml(tmp_path, "--debug", "runs")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_init_creates_everything_and_is_idempotent(tmp_path):
    root = tmp_path / "proj"
    done = gitml(tmp_path, "init", "--git", "--remote", str(tmp_path / "remote"), str(root))
    assert done.returncode == 0, done.stderr
    for path in (
        ".git",
        ".dvc/config",
        ".gitml/config.toml",
        ".gitml/.gitignore",
        ".gitattributes",
    ):
        assert (root / path).exists(), path
    dvc_config = (root / ".dvc" / "config").read_text()
    assert "analytics = False" in dvc_config and "check_update = False" in dvc_config
    # The remote is a path on this machine: never in the committed config.
    assert str(tmp_path / "remote") not in dvc_config and "remote" not in dvc_config
    assert str(tmp_path / "remote") in (root / ".dvc" / "config.local").read_text()
    assert git(root, "check-ignore", ".dvc/config.local").strip() == ".dvc/config.local"
    assert git(root, "config", "diff.gitml-parquet.textconv").strip() == "gitml textconv"
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git/" not in str(p)}
    again = gitml(root, "init")
    assert again.returncode == 0
    assert "nothing changed" in again.stdout
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git/" not in str(p)}
    assert before == after
    # Real DVC accepts the repository gitml set up.
    status = subprocess.run([sys.executable, "-m", "dvc", "remote", "list"], cwd=root,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert status.returncode == 0 and "local" in status.stdout


def test_init_outside_git_without_flag_is_an_error(tmp_path):
    done = gitml(tmp_path, "init")
    assert done.returncode == 2 and "gitml init --git" in done.stderr


def test_broken_config_is_named(project):
    project.config_path.write_text("schema_version = 1\n[tracking]\nflush_every = 'often'\n")
    done = gitml(project.root, "run", "--", "true")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"gitml: error: {project.config_path}: field tracking.flush_every: "
        "'often' is not of type 'integer'"
    )


def test_internal_errors_never_show_a_traceback(monkeypatch, capsys):
    def explode(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(click.Group, "invoke", explode)
    assert main(["runs"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("gitml: error: internal error: RuntimeError: kaboom")
        and "Traceback" not in err
    )


def test_init_keeps_a_committed_team_remote_and_sets_up_clones(tmp_path):
    root = tmp_path / "team"
    assert gitml(tmp_path, "init", "--git", str(root)).returncode == 0
    (root / ".dvc" / "config.local").unlink()  # as a clone has it: no machine remote
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "-d", "team", "s3://bucket/x"],
                   cwd=root, check=True, capture_output=True)  # fmt: skip
    again = gitml(root, "init")
    assert again.returncode == 0 and "default DVC remote" not in again.stdout
    assert not (root / ".dvc" / "config.local").exists()
    assert "s3://bucket/x" in (root / ".dvc" / "config").read_text()


def test_init_leaves_hooks_to_the_pre_commit_framework(tmp_path):
    from ruamel.yaml import YAML

    root = tmp_path / "framework"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".pre-commit-config.yaml").write_text("repos: []\n")
    done = gitml(root, "init")
    assert done.returncode == 0, done.stderr
    hooks = root / ".git" / "hooks"
    assert not [p for p in hooks.iterdir() if not p.name.endswith(".sample")]
    assert "left git hooks to the pre-commit framework" in done.stdout
    snippet = done.stdout.split("add gitml's:\n", 1)[1].split("\nthen:", 1)[0]
    config = YAML(typ="safe").load("repos:\n" + snippet)
    stages = [h["stages"][0] for h in config["repos"][0]["hooks"]]
    assert stages == ["pre-commit", "pre-push", "post-commit", "post-checkout", "post-merge"]
    assert all(h["entry"] == f"gitml hook {h['stages'][0]}" for h in config["repos"][0]["hooks"])

    # The lines as printed, installed with the real pre-commit tool, run gitml's checks.
    (root / ".pre-commit-config.yaml").write_text("repos:\n" + snippet + "\n")
    install = done.stdout.split("\nthen: ", 1)[1].split("\n", 1)[0].split()
    assert install[:2] == ["pre-commit", "install"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    installed = subprocess.run([sys.executable, "-m", "pre_commit", *install[1:]], cwd=root,
                               env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    git(root, "add", "-A")
    subprocess.run(["git", "commit", "-qm", "setup"], cwd=root, env=env, check=True)
    broken = root / ".gitml" / "runs" / "20260101T000000Z-abcdef"
    broken.mkdir(parents=True)
    (broken / "run.toml").write_text('schema_version = 1\nid = "20260101T000000Z-abcdef"\n')
    git(root, "add", "-A")
    refused = subprocess.run(["git", "commit", "-qm", "broken"], cwd=root, env=env,
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "'status' is a required property" in refused.stdout + refused.stderr


def test_a_command_opens_its_repository_once(trained, monkeypatch, capsys):
    """At most one repository handle per operation (`gitml diff`, `runs`, `show`)."""
    import pygit2

    opened = []
    real = pygit2.Repository

    class Counting(real):
        def __init__(self, path, *args, **kwargs):
            opened.append(path)
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(pygit2, "Repository", Counting)
    # `runs` right after `diff` finds the index up to date: refs come from `git for-each-ref`,
    # so it opens no repository at all; nor does `show` of a run in the working tree
    expected = ((["diff", "HEAD~1", "HEAD"], 1), (["runs", "--format", "json"], 0),
                (["show", trained[1][0]], 0))  # fmt: skip
    for argv, count in expected:
        opened.clear()
        assert main(argv) in (0, 1), capsys.readouterr().err
        assert len(opened) == count, (argv, opened)
    # outside a command (a library call), nothing is kept between calls
    from gitml import git

    opened.clear()
    git.resolve_commit(trained[0].root, "HEAD")
    git.resolve_commit(trained[0].root, "HEAD~1")
    assert len(opened) == 2
