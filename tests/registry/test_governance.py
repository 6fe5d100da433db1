"""Governance: only commits signed by allowed SSH keys may move production (a throwaway key)."""

import json
import subprocess
import tomllib

import pytest

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
    assert "not signed by a signer the previous policy allows (2 such change(s)" in push.stderr


@pytest.fixture
def governed(served, tmp_path):
    """iris under a policy: only alice moves production; alice signs from here on."""
    alice, mallory = _key(tmp_path, "alice"), _key(tmp_path, "mallory")
    (served / ".gitml" / "allowed_signers").write_text(
        f"alice@example.com {alice.with_suffix('.pub').read_text()}"
    )
    config = served / ".gitml" / "config.toml"
    config.write_text(config.read_text() + '\n[governance]\nprotected_aliases = ["production"]\n'
                      'allowed_signers = ".gitml/allowed_signers"\n')  # fmt: skip
    commit_all(served, "governance: only alice moves production")
    git(served, "config", "gpg.format", "ssh")
    git(served, "config", "user.signingkey", str(alice))
    git(served, "config", "commit.gpgsign", "true")
    return served, alice, mallory


def _audit(root):
    done = gitml(root, "audit", "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, [r for r in json.loads(done.stdout) if r["policy"] != "-"]


def _unsigned(root, message):
    git(root, "-c", "commit.gpgsign=false", "commit", "-q", "-a", "-m", message)


def test_an_unsigned_commit_cannot_switch_the_policy_off(governed, tmp_path):
    root, _, _ = governed
    config = root / ".gitml" / "config.toml"
    text = config.read_text()
    config.write_text(text[: text.index("[governance]")])
    _unsigned(root, "tidy the config")
    git(root, "config", "commit.gpgsign", "false")
    assert gitml(root, "model", "promote", "iris", "1", "-m", "no policy now?").returncode == 0
    code, judged = _audit(root)
    assert code == 1
    assert [(r["model"], r["edits"], r["policy"]) for r in judged] == [
        ("-", "policy: [governance] removed", "VIOLATION"),
        ("iris", "-", "VIOLATION"),  # still judged by alice's policy
    ]
    _, push = push_to_new_origin(root, tmp_path)
    assert push.returncode != 0 and "policy: [governance] removed" in push.stderr


def test_an_unsigned_commit_cannot_add_a_signer(governed, tmp_path):
    root, _, mallory = governed
    signers = root / ".gitml" / "allowed_signers"
    key = mallory.with_suffix(".pub").read_text()
    signers.write_text(signers.read_text() + f"mallory@example.com {key}")
    _unsigned(root, "add a colleague")
    git(root, "config", "user.signingkey", str(mallory))
    assert gitml(root, "model", "promote", "iris", "1", "-m", "mallory now").returncode == 0
    code, judged = _audit(root)
    assert code == 1
    assert [(r["edits"], r["signed by"], r["policy"]) for r in judged] == [
        ("policy: .gitml/allowed_signers changed", "-", "VIOLATION"),
        ("-", "-", "VIOLATION"),  # mallory's signature is judged by the list before her
    ]
    _, push = push_to_new_origin(root, tmp_path)
    assert push.returncode != 0 and "policy: .gitml/allowed_signers changed" in push.stderr


def test_a_registered_version_is_append_only_whoever_signs(governed, tmp_path):
    root, _, _ = governed
    registry = root / ".gitml" / "models" / "iris.toml"
    doc = tomllib.loads(registry.read_text())
    v1, v2 = doc["versions"][0]["md5"], doc["versions"][1]["md5"]
    registry.write_text(registry.read_text().replace(f'md5 = "{v2}"', f'md5 = "{v1}"', 1))
    git(root, "commit", "-q", "-a", "-m", "alice swaps the bytes production serves")
    code, judged = _audit(root)
    assert code == 1
    (row,) = judged
    assert row["edits"] == f"iris v2 md5 {v2} -> {v1}" and row["signed by"] == "alice@example.com"
    assert row["policy"] == "VIOLATION"
    _, push = push_to_new_origin(root, tmp_path)
    assert push.returncode != 0 and "versions are append-only" in push.stderr


def test_alices_signed_history_passes(governed, tmp_path):
    root, _, _ = governed
    bob = _key(tmp_path, "bob")
    assert gitml(root, "model", "promote", "iris", "1", "-m", "alice").returncode == 0
    signers = root / ".gitml" / "allowed_signers"
    signers.write_text(
        signers.read_text() + f"bob@example.com {bob.with_suffix('.pub').read_text()}"
    )
    git(root, "commit", "-q", "-a", "-m", "alice adds bob")
    git(root, "config", "user.signingkey", str(bob))
    assert gitml(root, "model", "promote", "iris", "2", "-m", "bob").returncode == 0
    code, judged = _audit(root)
    assert code == 0, judged
    assert [(r["signed by"], r["policy"]) for r in judged] == [
        ("alice@example.com", "ok"),
        ("alice@example.com", "ok"),
        ("bob@example.com", "ok"),
    ]
    _, push = push_to_new_origin(root, tmp_path)
    assert push.returncode == 0, push.stderr


def test_pre_push_audits_the_branch_pushed_not_head(governed, tmp_path):
    root, _, _ = governed
    origin, pushed = push_to_new_origin(root, tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    git(root, "checkout", "-q", "-b", "sneaky")
    git(root, "config", "commit.gpgsign", "false")
    assert gitml(root, "model", "promote", "iris", "1", "-m", "unsigned").returncode == 0
    git(root, "checkout", "-q", "main")  # HEAD is clean; the branch pushed is not
    done = subprocess.run(["git", "push", "origin", "sneaky"], cwd=root, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode != 0 and "push refused" in done.stderr, done.stderr
    assert "sneaky" not in git(origin, "branch")
