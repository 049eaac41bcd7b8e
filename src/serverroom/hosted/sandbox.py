"""Running model-written Python for the code interpreter, in a sandbox.

Each run is a fresh process in a private working directory that holds the container's files
(``/mnt/data`` inside the sandbox, as on the platform); the files it creates or changes come
back, and the directory is removed. Two kinds:

* ``bubblewrap`` (Debian's ``bwrap``): new user, network, PID, IPC and UTS namespaces, so no
  network at all (not even the host's loopback) and no other process is visible; the
  filesystem is only the system's and Python's directories read-only, a private ``/tmp``, and
  the working directory; the environment is cleared.
* ``subprocess``: the working directory and a cleared environment only; it does not isolate
  the filesystem or the network. ``auto`` uses bubblewrap wherever it works.

Both run under ``prlimit``: CPU seconds, address space, the size of a file written, and a
wall-clock limit after which the whole process group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DATA = "/mnt/data"  # the working directory inside the sandbox, as on the platform
CODE = "/opt/serverroom/main.py"
MAX_LOG_CHARS = 20_000
MAX_FILES = 50


@dataclass(frozen=True)
class Limits:
    """What one run may use."""

    wall_seconds: float = 30.0
    cpu_seconds: int = 20
    memory_mb: int = 1024
    file_mb: int = 64


@dataclass
class RunResult:
    """What a run printed, how it ended, and the files it created or changed."""

    logs: str
    exit_code: int | None
    timed_out: bool = False
    files: dict[str, bytes] = field(default_factory=dict)


@cache
def bubblewrap_works() -> bool:
    """Whether ``bwrap`` is installed and may create namespaces here (checked once)."""
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return probe.returncode == 0


def resolve_kind(setting: str) -> str:
    """The sandbox ``setting`` ("auto", "bubblewrap", "subprocess") names, as run."""
    if setting == "auto":
        return "bubblewrap" if bubblewrap_works() else "subprocess"
    return setting


def _readable_roots() -> list[str]:
    """The directories a sandboxed Python needs: the system's and the interpreter's."""
    roots = {"/usr", "/bin", "/lib", "/lib64", "/etc/alternatives", "/etc/ssl"}
    roots |= {sys.base_prefix, sys.prefix, str(Path(sys.executable).resolve().parent.parent)}
    return sorted(r for r in roots if os.path.exists(r))


def _bwrap(work: Path, code: Path) -> list[str]:
    # The private /tmp first: the binds that follow may lie under it (a venv in /tmp).
    binds: list[str] = ["--tmpfs", "/tmp"]
    for root in _readable_roots():
        binds += ["--ro-bind", root, root]
    return [
        "bwrap",
        *binds,
        "--bind", str(work), DATA,
        "--ro-bind", str(code), CODE,
        "--proc", "/proc",
        "--dev", "/dev",
        "--chdir", DATA,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv", "HOME", DATA,
        "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "MPLBACKEND", "Agg",
        sys.executable, "-I", "-B", CODE,
    ]  # fmt: skip


def _prlimit(limits: Limits) -> list[str]:
    return [
        "prlimit",
        f"--cpu={limits.cpu_seconds}",
        f"--as={limits.memory_mb * 1024 * 1024}",
        f"--fsize={limits.file_mb * 1024 * 1024}",
        "--",
    ]


def _snapshot(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and len(out) < MAX_FILES:
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def _prepare(tmp: Path, code: str, files: dict[str, bytes]) -> tuple[Path, Path]:
    work, script = tmp / "data", tmp / "main.py"
    work.mkdir()
    for name, data in files.items():
        target = (work / name).resolve()
        if not target.is_relative_to(work.resolve()):
            continue  # a path that would leave the directory is not written
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    script.write_text(code)
    return work, script


async def run_python(
    code: str, files: dict[str, bytes], limits: Limits, kind: str = "auto"
) -> RunResult:
    """Run ``code`` with ``files`` in its working directory; its output and changed files."""
    with tempfile.TemporaryDirectory(prefix="serverroom-ci-") as name:
        work, script = await asyncio.to_thread(_prepare, Path(name), code, files)
        if resolve_kind(kind) == "bubblewrap":
            command = _bwrap(work, script)
        else:
            command = [sys.executable, "-I", "-B", str(script)]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "MPLBACKEND": "Agg"}
        process = await asyncio.create_subprocess_exec(
            *_prlimit(limits),
            *command,
            cwd=work,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        try:
            output, _ = await asyncio.wait_for(process.communicate(), limits.wall_seconds)
        except TimeoutError:
            timed_out = True
            _kill(process.pid)
            output, _ = await process.communicate()
        except BaseException:
            _kill(process.pid)
            raise
        after = await asyncio.to_thread(_snapshot, work)
    logs = output.decode("utf-8", errors="replace")
    if len(logs) > MAX_LOG_CHARS:
        logs = logs[: MAX_LOG_CHARS // 2] + "\n…(output cut)…\n" + logs[-MAX_LOG_CHARS // 2 :]
    changed = {path: data for path, data in after.items() if files.get(path) != data}
    exit_code = None if timed_out else process.returncode
    return RunResult(logs, exit_code, timed_out, changed)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
