"""Package versions come from a per-environment cache: module owners and their versions."""

import json
import subprocess
import sys
from importlib import metadata

PROBE = (
    "import json, sys; from gitml.tracking import env; "
    "print(json.dumps(env.package_versions(['sklearn', 'yaml', 'numpy', 'gitml'])))"
)


def test_versions_match_importlib_and_the_cache_is_written_once(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    first = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                           text=True, check=True)  # fmt: skip
    (cached,) = (tmp_path / "gitml").glob("packages-*.json")
    written = cached.stat().st_mtime_ns
    second = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert cached.stat().st_mtime_ns == written, "the second process read the cache"
    versions = json.loads(first.stdout)
    assert versions == json.loads(second.stdout)
    owners = metadata.packages_distributions()
    expected = {d: metadata.version(d) for m in ("sklearn", "yaml", "numpy", "gitml")
                for d in owners.get(m, [])}  # fmt: skip
    assert versions == expected and versions["scikit-learn"] == metadata.version("scikit-learn")


def test_a_broken_cache_file_is_recomputed(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", PROBE], env=env, check=True, capture_output=True)
    (cached,) = (tmp_path / "gitml").glob("packages-*.json")
    cached.write_text("{not json")
    again = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert json.loads(again.stdout)["numpy"] == metadata.version("numpy")
    rewritten = json.loads(cached.read_text())
    assert rewritten["owners"]["numpy"] == ["numpy"]
    assert rewritten["versions"]["numpy"] == metadata.version("numpy")


def test_a_cache_in_the_old_format_is_recomputed(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", PROBE], env=env, check=True, capture_output=True)
    (cached,) = (tmp_path / "gitml").glob("packages-*.json")
    cached.write_text(json.dumps({"numpy": ["numpy"]}))  # module -> owners, no versions
    again = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert json.loads(again.stdout)["numpy"] == metadata.version("numpy")
    assert "versions" in json.loads(cached.read_text())
