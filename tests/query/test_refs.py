"""The index's view of refs, read with the git CLI, against pygit2's peeling of the same refs."""

import pygit2

from gitml import git as gitml_git
from tests.helpers import commit_all, git


def test_ref_tips_peel_every_kind_of_ref_as_pygit2_does(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("a\n")
    first = commit_all(root, "first")
    git(root, "tag", "light")  # a lightweight tag
    git(root, "tag", "-a", "annotated", "-m", "an annotated tag")
    git(root, "tag", "-a", "of-a-tree", "-m", "a tag of a tree", "HEAD^{tree}")
    git(root, "checkout", "-q", "-b", "feature")
    (root / "b.txt").write_text("b\n")
    second = commit_all(root, "second")
    git(root, "update-ref", "refs/exps/ab/cdef/exp-one", second)
    tips = gitml_git.ref_tips(root)

    repo = pygit2.Repository(str(root))
    expected = {}
    for name in repo.references:
        if not name.startswith(("refs/heads/", "refs/tags/")):
            continue
        try:
            expected[name] = str(repo.references[name].peel(pygit2.Commit).id)
        except (pygit2.GitError, pygit2.InvalidSpecError, ValueError):
            continue  # the tag of a tree
    assert tips == expected
    assert tips["refs/tags/annotated"] == tips["refs/tags/light"] == first
    assert "refs/tags/of-a-tree" not in tips and "HEAD" not in tips

    git(root, "checkout", "-q", "--detach", first)
    assert gitml_git.ref_tips(root)["HEAD"] == first
    exps = gitml_git.refs_with_times(root, "refs/exps/")
    assert exps == {"refs/exps/ab/cdef/exp-one": (second, repo[second].commit_time)}


def test_an_empty_repository_has_no_tips(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    assert gitml_git.ref_tips(tmp_path) == {}
