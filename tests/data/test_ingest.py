import hashlib
import os
import subprocess
import sys

import pytest

from gitml.data import add, cache_path
from gitml.data.add import track
from gitml.data.ingest import can_reflink, ingest
from tests.helpers import commit_all


def test_one_pass_copy_hashes_like_md5(tmp_path):
    data = os.urandom(9 * 1024 * 1024 + 17)  # several chunks and a ragged end
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    md5 = ingest(src, tmp_path / "cache")
    assert md5 == hashlib.md5(data).hexdigest()
    obj = tmp_path / "cache" / md5[:2] / md5[2:]
    assert obj.read_bytes() == data
    assert obj.stat().st_mode & 0o777 == 0o444, "cache objects are read-only, as DVC makes them"
    assert not list((tmp_path / "tmp").iterdir()), "no temp file is left"


def test_hardlink_mode_links_instead_of_copying(tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(b"abc" * 1000)
    md5 = ingest(src, tmp_path / "cache", hardlink=True)
    obj = tmp_path / "cache" / md5[:2] / md5[2:]
    assert os.path.samefile(obj, src)


def test_unchanged_file_is_not_hashed_again(project, monkeypatch):
    (project.root / "d.bin").write_bytes(b"123")
    first = track(project.root, project.root / "d.bin")
    calls = []
    monkeypatch.setattr("gitml.data.ingest.md5_of", lambda *a, **k: calls.append(a) or "x")
    monkeypatch.setattr("gitml.data.ingest._hash_and_copy", lambda *a, **k: calls.append(a) or "x")
    again = track(project.root, project.root / "d.bin")
    assert again == first and calls == []


def test_big_copy_is_said_not_silent(project, monkeypatch, capsys):
    import logging

    from gitml import logs

    logger = logging.getLogger(logs.ROOT)  # put back as it was afterwards
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))  # a copy gets the new one
    for name in ("propagate", "level"):
        monkeypatch.setattr(logger, name, getattr(logger, name))
    logs.configure()  # as every face does: alone, pytest's own log capture took the warning
    monkeypatch.setattr(add, "PROGRESS_BYTES", 10)
    (project.root / "m.bin").write_bytes(b"0123456789" * 10)
    track(project.root, project.root / "m.bin")
    err = capsys.readouterr().err
    if can_reflink(project.root / ".dvc" / "cache"):
        assert err == ""
    else:
        assert "copied m.bin" in err and "cache.type hardlink" in err


def test_real_dvc_checkout_restores_what_gitml_tracked(project):
    payload = os.urandom(4096)
    (project.root / "model.bin").write_bytes(payload)
    track(project.root, project.root / "model.bin")
    commit_all(project.root, "model")
    (project.root / "model.bin").unlink()
    done = subprocess.run([sys.executable, "-m", "dvc", "checkout"], cwd=project.root,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (project.root / "model.bin").read_bytes() == payload
    assert cache_path(project.root, hashlib.md5(payload).hexdigest()).is_file()


def test_missing_path_is_a_clear_error(project):
    from gitml.errors import ArtifactError

    with pytest.raises(ArtifactError, match="no such file"):
        track(project.root, project.root / "folder")


def test_directory_is_tracked_by_dvc_and_restored_by_hash(project, tmp_path):
    import gitml
    from gitml.data import ArtifactRef
    from gitml.data.checkout import restore

    images = project.root / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.txt").write_text("a")
    (images / "sub" / "b.txt").write_text("bb")
    with gitml.start_run() as run:
        ref = run.log_input("images")
    assert ref["md5"].endswith(".dir") and ref["nfiles"] == 2 and ref["size"] == 3
    assert (project.root / "images.dvc").is_file()
    out = tmp_path / "restored"
    restore(project.root, ArtifactRef(md5=ref["md5"], size=ref["size"]), out)
    assert (out / "a.txt").read_text() == "a" and (out / "sub" / "b.txt").read_text() == "bb"
