"""Artifacts on an object-store remote: push and pull through a local S3 server (moto)."""

import hashlib
import os
import shutil
import socket

import boto3
import dvc_s3  # noqa: F401 - the S3 remote type DVC needs
import pytest
from moto import server as server_module

from tests.helpers import commit_all, dvc, gitml

SCRIPT = (
    "import os, gitml\n"
    "with gitml.start_run('s3') as run:\n"
    "    open('weights.bin', 'wb').write(os.urandom(300_000))\n"
    "    run.log_artifact('weights.bin')\n"
)


@pytest.fixture
def s3(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookups off this machine
    }
    for key, value in credentials.items():
        monkeypatch.setenv(key, value)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="gitml-store")
    yield endpoint, client
    server.stop()


def test_push_and_pull_through_an_s3_remote(project, s3):
    endpoint, client = s3
    root = project.root
    done = gitml(root, "remote", "add", "s3", "s3://gitml-store/project", "--default")
    assert done.returncode == 0, done.stderr
    dvc(root, "remote", "modify", "s3", "endpointurl", endpoint)
    (root / "train.py").write_text(SCRIPT)
    assert gitml(root, "run", "--", "python", "train.py").returncode == 0
    commit_all(root, "a run with weights")
    md5 = hashlib.md5((root / "weights.bin").read_bytes()).hexdigest()

    pushed = gitml(root, "push")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="gitml-store")["Contents"]]
    assert f"project/files/md5/{md5[:2]}/{md5[2:]}" in keys

    shutil.rmtree(root / ".dvc" / "cache")
    (root / "weights.bin").unlink()
    pulled = gitml(root, "pull")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert hashlib.md5((root / "weights.bin").read_bytes()).hexdigest() == md5
    assert os.environ["AWS_ACCESS_KEY_ID"] not in (root / ".dvc" / "config").read_text()
