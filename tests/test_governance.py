"""Governance: only commits signed by allowed SSH keys may move production (a throwaway key)."""

import json
import subprocess

from tests.helpers import commit_all, git, gitml, push_to_new_origin


def _key(tmp_path, name):
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True)  # fmt: skip
    return key


def test_signed_promotions_pass_the_audit_unsigned_ones_break_it(served, tmp_path):
    alice, mallory = _key(tmp_path, "alice"), _key(tmp_path, "mallory")
    signers = served / ".gitml" / "allowed_signers"
    signers.write_text(f"alice@example.com {(alice.with_suffix('.pub')).read_text()}")
    config = served / ".gitml" / "config.toml"
    config.write_text(config.read_text() + '\n[governance]\nprotected_aliases = ["production"]\n'
                      'allowed_signers = ".gitml/allowed_signers"\n')  # fmt: skip
    commit_all(served, "governance: only alice moves production")
    clean = gitml(served, "audit")
    assert clean.returncode == 0, clean.stdout + clean.stderr  # older changes are not judged

    git(served, "config", "gpg.format", "ssh")
    git(served, "config", "commit.gpgsign", "true")
    git(served, "config", "user.signingkey", str(alice))
    signed = gitml(served, "model", "promote", "iris", "1", "-m", "alice signs")
    assert signed.returncode == 0, signed.stderr
    git(served, "config", "user.signingkey", str(mallory))  # a key nobody allowed
    assert gitml(served, "model", "promote", "iris", "2", "-m", "mallory").returncode == 0
    git(served, "config", "commit.gpgsign", "false")
    assert gitml(served, "model", "promote", "iris", "1", "--to", "staging").returncode == 0
    assert gitml(served, "model", "rollback", "iris", "-m", "unsigned").returncode == 0

    done = gitml(served, "audit", "iris", "--format", "json")
    assert done.returncode == 1
    judged = [r for r in json.loads(done.stdout) if r["policy"] != "-"]
    assert [(r["aliases"], r["signed by"], r["policy"]) for r in judged] == [
        ("production v2 -> v1", "alice@example.com", "ok"),
        ("production v1 -> v2", "-", "VIOLATION"),
        ("production v2 -> v1", "-", "VIOLATION"),
    ]
    staging = [r for r in json.loads(done.stdout) if r["aliases"].startswith("staging")]
    assert staging and staging[0]["policy"] == "-"
    table = gitml(served, "audit")
    assert table.returncode == 1 and "2 change(s) break the policy" in table.stdout

    _origin, push = push_to_new_origin(served, tmp_path)
    assert push.returncode != 0
    assert "gitml pre-push: push refused: iris production v1 -> v2 in" in push.stderr
    assert "not signed by an allowed signer (2 such change(s)" in push.stderr
