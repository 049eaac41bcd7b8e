"""The container's start-up command, outside a container (no container runtime runs here):
the Dockerfile's ``CMD`` with its ``ENV``, and compose.yaml's replica environment pointed at
the local PostgreSQL and Redis, as two replicas. Both become healthy, write JSON log lines, and
share state: a key made on one serves a chat on the other, and a response stored through one
is read back through the other."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.conftest import fresh_postgres_database
from tests.live.server import free_port, wait_healthy

pytestmark = [pytest.mark.live, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
ADMIN = "sk-admin-" + "C" * 40


def _image() -> tuple[list[str], dict[str, str]]:
    """The Dockerfile's CMD and ENV."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    cmd = json.loads(re.findall(r"^CMD (.*)$", text, re.M)[-1])
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (SERVERROOM_.*)$", text, re.M):
        env.update(part.split("=", 1) for part in shlex.split(line))
    return cmd, env


def _replica_env(database: str) -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    env = {k: str(v) for k, v in compose["services"]["serverroom-1"]["environment"].items()}
    env["SERVERROOM_DATABASE_URL"] = database  # postgres:5432 is this machine's server
    env["SERVERROOM_REDIS_URL"] = env["SERVERROOM_REDIS_URL"].replace("//redis:", "//127.0.0.1:")
    env["SERVERROOM_AUTH__ADMIN_KEY"] = ADMIN
    env["SERVERROOM_SECRET_KEY"] = "a-shared-secret-for-both-replicas"
    return env


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    cmd, image_env = _image()
    binary = Path(sys.executable).with_name(cmd[0])  # the console script, as in the image
    with fresh_postgres_database("sr_container") as database:
        procs, urls = [], []
        try:
            for name in ("1", "2"):
                data = tmp_path_factory.mktemp(f"replica-{name}")
                port = free_port()
                env = {**os.environ, **image_env, **_replica_env(database)}
                env.update(SERVERROOM_PORT=str(port), SERVERROOM_DATA_DIR=str(data))
                log = (data / "server.log").open("ab")
                procs.append(
                    subprocess.Popen([str(binary), *cmd[1:]], env=env, stdout=log, stderr=log)
                )
                urls.append(f"http://127.0.0.1:{port}")
            for url, proc in zip(urls, procs, strict=True):
                wait_healthy(url, proc)
            yield urls
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)


def test_two_replicas_from_the_image_command_share_state(replicas: list[str]) -> None:
    one, two = replicas
    admin = {"Authorization": f"Bearer {ADMIN}"}
    project = httpx.post(f"{one}/v1/organization/projects", json={"name": "c"}, headers=admin)
    assert project.status_code == 200, project.text
    key = httpx.post(
        f"{one}/v1/organization/projects/{project.json()['id']}/api_keys", json={}, headers=admin
    ).json()["value"]
    first = openai.OpenAI(base_url=f"{two}/v1", api_key=key, max_retries=0)
    made = first.responses.create(model="gpt-4o-mini", input="Hi!", max_output_tokens=8)
    other = openai.OpenAI(base_url=f"{one}/v1", api_key=key, max_retries=0)
    assert other.responses.retrieve(made.id).output_text == made.output_text
    with pytest.raises(openai.AuthenticationError):  # auth.mode = keys, as compose sets it
        openai.OpenAI(base_url=f"{one}/v1", api_key="sk-nobody", max_retries=0).models.list()


def test_the_image_logs_json_lines(
    replicas: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    logs = [p for p in tmp_path_factory.getbasetemp().glob("replica-*/server.log")]
    lines = [line for path in logs for line in path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    assert parsed and len(parsed) == len(lines), lines[:5]
    assert {"time", "level", "logger", "message"} <= set(parsed[0])
