"""The search space: DVC/Hydra sweep syntax on the command line, Optuna tables in a file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitml.errors import GitmlError, UsageError
from gitml.repo import Repo
from gitml.sweep.space import from_file, from_options
from tests.helpers import git


def test_command_line_forms_give_the_dimensions_a_dvc_user_writes() -> None:
    space = from_options([
        "C=choice(0.1, 1, 10)", "depth=range(2, 6)", "kernel=rbf,linear",
        "lr=interval(0.001, 0.1)", "alpha=tag(log, interval(1e-4, 1))", "seed=7",
        "name=\"true\"", "frac=range(0.1, 0.4, 0.1)",
    ])  # fmt: skip
    dims = {d.name: d for d in space.dimensions}
    assert dims["C"].values() == [0.1, 1, 10]
    assert dims["depth"].values() == [2, 3, 4, 5]  # stop excluded, as Python's range
    assert dims["kernel"].values() == ["rbf", "linear"]
    assert dims["frac"].values() == [0.1, 0.2, 0.3]
    assert (dims["lr"].kind, dims["lr"].low, dims["lr"].high, dims["lr"].log) == (
        "float", 0.001, 0.1, False)  # fmt: skip
    assert dims["alpha"].log and not dims["alpha"].discrete
    assert space.fixed == {"seed": 7, "name": "true"}  # a quoted "true" stays text
    assert not space.discrete


def test_a_grid_lists_every_combination_first_dimension_slowest() -> None:
    space = from_options(["C=choice(0.1,1,10)", "depth=range(2,6)"])
    grid = list(space.grid())
    assert space.grid_size() == len(grid) == 12
    assert grid[0] == {"C": 0.1, "depth": 2} and grid[1] == {"C": 0.1, "depth": 3}
    assert grid[-1] == {"C": 10, "depth": 5}
    assert len({tuple(p.items()) for p in grid}) == 12


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("C", "expected NAME=VALUES"),
        ("=choice(1,2)", "expected NAME=VALUES"),
        ("C=choice(1,,2)", "an empty value"),
        ("C=choice(1,1)", "listed twice"),
        ("d=range(5,2)", "start < stop"),
        ("d=range(1,5,0)", "step above 0"),
        ("d=range(a,5)", "all numbers"),
        ("lr=interval(0.1)", "low and high"),
        ("lr=interval(0.5,0.1)", "must be below high"),
        ("lr=tag(log, interval(0, 1))", "log scale needs low above 0"),
        ("lr=tag(ln, interval(1, 2))", "tag() takes log"),
        ("bad name=choice(1,2)", "not a param name"),
        ("C=[1,2]", "single value"),
        ("C=choice(0.1,1", "unbalanced brackets"),
        ("C=choice(range(1,3))", "unbalanced brackets"),
        ("C=0.1,choice(1,2)", "unbalanced brackets"),
        ("model=rf(1)", "quote text that holds brackets"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(item: str, says: str) -> None:
    with pytest.raises(UsageError) as err:
        from_options([item])
    message = str(err.value)
    assert says in message and repr(item) in message and "\n" not in message


def test_a_huge_grid_is_counted_not_listed_and_refused(project: Repo) -> None:
    from gitml.sweep import study as studies
    from gitml.sweep.workspace import Snapshot

    space = from_options(["d=range(0, 1000000000)", "C=choice(1, 2)", 'model="rf(1)"'])
    assert space.grid_size() == 2_000_000_000 and space.fixed == {"model": "rf(1)"}
    huge = "the grid has 2,000,000,000 combinations, more than 100,000: narrow it"
    with pytest.raises(UsageError, match=huge):
        studies.new_spec(project, command=("python", "x.py"), cwd=".", metric="a",
                         direction="maximize", sampler="grid", trials=3, space=space,
                         code=Snapshot("a" * 40, None, None))  # fmt: skip
    spec = studies.new_spec(project, command=("python", "x.py"), cwd=".", metric="a",
                            direction="maximize", sampler="random", trials=3, space=space,
                            code=Snapshot("a" * 40, None, None))  # fmt: skip
    assert spec.trials == 3, "a random search of the same space is fine"
    spec_file = studies.write(project, spec) / "sweep.toml"
    spec_file.write_text(spec_file.read_text().replace('sampler = "random"', 'sampler = "grid"'))
    with pytest.raises(GitmlError, match=f"sweep.toml: sampler grid: {huge}"):
        studies.read(project, spec.id)  # an edited sweep.toml is refused before it is listed


def test_nothing_searched_and_a_param_twice_are_refused() -> None:
    with pytest.raises(UsageError, match="nothing to search"):
        from_options(["C=1"])
    with pytest.raises(UsageError, match="given twice"):
        from_options(["C=choice(1,2)", "C=3"])


def test_a_space_file_names_optuna_distributions(tmp_path: Path) -> None:
    path = tmp_path / "space.toml"
    path.write_text(
        '[lr]\ntype = "float"\nlow = 0.0001\nhigh = 0.1\nlog = true\n'
        '[depth]\ntype = "int"\nlow = 2\nhigh = 8\nstep = 2\n'
        '[model]\nchoices = ["rf", "gb"]\n'
        "seed = 3\n".replace("seed = 3\n", "")
    )
    space = from_options(["seed=3"], beside=from_file(path))
    dims = {d.name: d for d in space.dimensions}
    assert dims["lr"].log and dims["lr"].kind == "float"
    assert dims["depth"].values() == [2, 4, 6, 8]
    assert dims["model"].values() == ["rf", "gb"]
    assert space.fixed == {"seed": 3}
    assert {d["type"] for d in space.to_toml()["dimensions"].values()} == {
        "float", "int", "categorical"}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[lr]\ntype = 'normal'\n", "type must be one of"),
        ("[lr]\ntype = 'float'\nlow = 1\n", "high must be a number"),
        ("[lr]\ntype = 'float'\nlow = 0\nhigh = 1\nsetp = 1\n", "unknown key 'setp'"),
        ("[m]\nchoices = []\n", "non-empty list"),
        ("[lr]\ntype = 'float'\nlow = 0\nhigh = 1\nlog = 'yes'\n", "log must be true or false"),
        ("lr = [1, 2]\n", "expected a table"),
        ("x = 1\n", "nothing to search"),
        ("[lr\n", "not valid TOML"),
    ],
)
def test_a_bad_space_file_names_the_file_and_table(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(GitmlError) as err:
        from_file(path)
    assert says in str(err.value) and str(path) in str(err.value)


def test_the_pre_commit_hook_validates_a_sweep_file(project: Repo) -> None:
    folder = project.gitml_dir / "sweeps" / "20261130T185409Z-cef5f3"
    folder.mkdir(parents=True)
    (folder / "sweep.toml").write_text(
        'schema_version = 1\nid = "20261130T185409Z-cef5f3"\ncreated_at = "2026-11-30T18:54:09"\n'
        'command = ["python", "train.py"]\ncwd = "."\nmetric = "accuracy"\n'
        'direction = "upward"\nsampler = "grid"\ntrials = 2\n'
        '[space.dimensions.C]\ntype = "categorical"\nchoices = [1, 2]\n'
        '[code]\ncommit = "' + "a" * 40 + '"\n'
    )
    git(project.root, "add", "-A")
    done = subprocess.run(["git", "commit", "-qm", "a sweep by hand"], cwd=project.root,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode != 0
    assert "sweep.toml: field direction" in done.stderr


def test_a_resumed_seeded_search_does_not_replay_its_first_trials(project: Repo) -> None:
    from gitml.sweep import study as studies
    from gitml.sweep.workspace import Snapshot

    space = from_options(["lr=interval(0.001, 0.1)", "depth=range(1, 50)"])
    spec = studies.new_spec(project, command=("python", "x.py"), cwd=".", metric="a",
                            direction="maximize", sampler="random", trials=6, space=space,
                            code=Snapshot("a" * 40, None, None), seed=3)  # fmt: skip
    studies.write(project, spec)
    first = studies.Study(project, spec)
    for value in (0.1, 0.2):
        trial, _ = first.ask()
        first.tell(trial, "complete", value)
    again = studies.Study(project, studies.read(project, spec.id))
    _, params = again.ask()
    assert params not in [t.params for t in again.trials()[:2]]
    assert [t.state for t in again.trials()] == ["complete", "complete", "running"]
