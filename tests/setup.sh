#!/usr/bin/env bash
# What the test suite needs besides pip packages, installed before it runs (nothing is
# downloaded at test time; tests only talk to 127.0.0.1):
#  1. headless Chromium for the HTML-report test, from Debian's packages, if it is missing. The
#     test drives it through Playwright's Python package. Without apt-get it says so; the test
#     then skips (fails on CI).
#  2. the SARIF 2.1.0 JSON Schema (OASIS; free to incorporate), which `gitml check --format
#     sarif` is validated against. No pip package installs it; the sarif-pydantic sdist ships
#     the official file, so it is taken from there and checked by its sha256.
#  3. gitml's modules byte-compiled. Where PYTHONDONTWRITEBYTECODE is set (this machine kind
#     sets it), Python never writes them, so every gitml process the tests start (the CLI, and
#     a git hook on every commit: about 2,000) compiled them again: 0.31 s to import the CLI
#     against 0.18 s from the compiled files. Python reads them all the same.
set -uo pipefail
cd "$(dirname "$0")/.."

install_chromium() {
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "tests/setup: no apt-get here; install Chromium yourself for the report test" >&2
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; } \
    || { echo "tests/setup: apt-get could not install chromium" >&2; return 1; }
  echo "tests/setup: installed $(chromium --version 2>/dev/null)"
}

SARIF_SCHEMA=tests/.cache/sarif-schema-2.1.0.json
SARIF_SHA256=6352a05f9d03f181b8d9c71a46bdacc4fcff9d8ade5364858b425ba0c0994ed7

fetch_sarif_schema() {
  if [ -f "$SARIF_SCHEMA" ]; then return 0; fi
  local tmp
  tmp="$(mktemp -d)"
  python -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "sarif-pydantic==0.6.2" \
    || { echo "tests/setup: could not download the sarif-pydantic sdist" >&2; rm -rf "$tmp"; return 1; }
  python - "$tmp" "$SARIF_SCHEMA" "$SARIF_SHA256" <<'PY' || { rm -rf "$tmp"; return 1; }
import hashlib, pathlib, sys, tarfile
folder, dest, want = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
(sdist,) = folder.glob("sarif_pydantic-*.tar.gz")
with tarfile.open(sdist) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("/sarif-schema-2.1.0.json"))
    data = tar.extractfile(member).read()
if hashlib.sha256(data).hexdigest() != want:
    sys.exit("tests/setup: the SARIF schema in the sdist is not the expected file")
dest.parent.mkdir(parents=True, exist_ok=True)
dest.write_bytes(data)
print(f"tests/setup: SARIF 2.1.0 schema in {dest}")
PY
  rm -rf "$tmp"
}

compile_sources() {
  python -m compileall -q -j 0 src >/dev/null \
    || { echo "tests/setup: could not byte-compile src/" >&2; return 1; }
}

install_chromium && fetch_sarif_schema && compile_sources
