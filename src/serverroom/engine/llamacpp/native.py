"""Which of llama.cpp's native code paths this machine may run, found out in a child process.

llama.cpp's CPU backend picks its fastest kernels for the CPU it was compiled on, and some of
them fault on some hardware: on Intel Xeons with AMX the "extra buffer type" that repacks the
weights for AMX crashes with SIGSEGV in its matrix multiply on the first decode. A fault inside
the server would kill it, so before the engine loads a model with the fast settings, a
short-lived child process (``probe.py``) loads the same model with the same settings and runs a
small batched generation through the real engine. If the child dies, fails or hangs, the engine
uses the safe settings (no extra buffer types) instead; if those fail as well, the model is not
loaded and the error says why. Nothing here depends on which fault it is, so the next one of
its kind is caught the same way.

The verdict is kept in the data directory, keyed by the machine (CPU and features), the
llama.cpp build, the model file and the engine settings that shape the computation, so a
restart skips the probe. ``engine.extra_buffers`` (``auto | on | off``) lets an operator skip
the probe and force either choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from serverroom.engine.llamacpp import machine
from serverroom.settings import EngineSettings

logger = logging.getLogger("serverroom.engine.llamacpp")

CACHE_FILE = "native-probe.json"
How = Literal["forced", "probed", "cached"]


@dataclass(frozen=True)
class NativeChoice:
    """The native settings an engine loads its model with, and why."""

    extra_buffers: bool
    how: How
    reason: str

    def describe(self) -> str:
        state = "on" if self.extra_buffers else "off"
        return f"extra buffer types {state} ({self.how}: {self.reason})"


class NativeProbeError(RuntimeError):
    """llama.cpp failed on this machine with the safe settings too: the model cannot run."""


class ProbeOutcome(NamedTuple):
    """Whether the probe's child process ran the model, and what it showed."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class Probe:
    """What to probe: a model file run with one engine configuration."""

    gguf: Path
    context_length: int
    settings: EngineSettings

    def key(self) -> str:
        """Identifies the machine, the llama.cpp build, the model and the settings probed."""
        stat = self.gguf.stat()
        s = self.settings
        shape = (s.threads, s.slots, s.slot_context, s.batch_size, s.kv_unified)
        parts = [
            machine.cpu_model(),
            " ".join(machine.cpu_features()),
            machine.llama_build(),
            str(self.gguf.resolve()),
            f"{stat.st_size}:{int(stat.st_mtime)}",
            repr(shape),
            str(self.context_length),
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]

    def run(self, *, extra_buffers: bool) -> ProbeOutcome:
        """Run the child process once; a crash, an error or a hang is a failed outcome."""
        spec = {
            "gguf": str(self.gguf),
            "context_length": self.context_length,
            "settings": self.settings.model_dump(mode="json"),
            "extra_buffers": extra_buffers,
        }
        command = [sys.executable, "-m", "serverroom.engine.llamacpp.probe", json.dumps(spec)]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                timeout=self.settings.probe_timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ProbeOutcome(False, f"the probe hung for over {self.settings.probe_timeout:g} s")
        seconds = time.monotonic() - started
        if done.returncode == 0:
            return ProbeOutcome(True, f"a batched decode ran in a child process ({seconds:.1f} s)")
        return ProbeOutcome(False, _failure(done.returncode, done.stderr))


def _failure(returncode: int, stderr: bytes) -> str:
    """The reason a child failed: the signal that killed it, and the end of what it printed."""
    if returncode < 0:
        try:
            what = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            what = f"was killed by signal {-returncode}"
    else:
        what = f"exited with status {returncode}"
    text = stderr.decode(errors="replace")
    if text.strip():
        logger.debug("the probe's output:\n%s", text)
    return f"the probe {what}" + (f" ({_where(text)})" if _where(text) else "")


def _where(stderr: str) -> str:
    """Where the child failed: faulthandler's headline and innermost frame, or its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = next((line for line in lines if line.startswith("Fatal Python error")), None)
    if fatal is None:
        return lines[-1] if lines else ""
    current = next((i for i, line in enumerate(lines) if line.startswith("Current thread")), None)
    frame = lines[current + 1] if current is not None and current + 1 < len(lines) else ""
    return f"{fatal}; {frame}" if frame.startswith("File") else fatal


def choose(probe: Probe, *, mode: str, cache_dir: Path | None) -> NativeChoice:
    """The settings to load the model with: forced by ``mode``, cached, or probed now."""
    if mode == "on":
        return NativeChoice(True, "forced", "engine.extra_buffers = on")
    if mode == "off":
        return NativeChoice(False, "forced", "engine.extra_buffers = off")
    cache = _Cache(cache_dir / CACHE_FILE) if cache_dir is not None else None
    key = probe.key()
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return NativeChoice(cached.extra_buffers, "cached", cached.reason)
    choice = _probe_both(probe)
    if cache is not None:
        cache.put(key, choice)
    return choice


def cached_choice(probe: Probe, cache_dir: Path) -> NativeChoice | None:
    """The verdict kept for this probe, without probing."""
    return _Cache(cache_dir / CACHE_FILE).get(probe.key())


def _probe_both(probe: Probe) -> NativeChoice:
    logger.info("probing llama.cpp with extra buffer types on %s", probe.gguf.name)
    fast = probe.run(extra_buffers=True)
    if fast.ok:
        return NativeChoice(True, "probed", fast.detail)
    logger.warning("llama.cpp failed with extra buffer types on: %s", fast.detail)
    safe = probe.run(extra_buffers=False)
    if safe.ok:
        return NativeChoice(False, "probed", f"with them on, {fast.detail}")
    raise NativeProbeError(
        f"llama.cpp cannot run {probe.gguf.name} on this machine: with extra buffer types on,"
        f" {fast.detail}; with them off, {safe.detail}"
    )


class _Cache:
    """Verdicts by probe key in one small JSON file, replaced atomically on every write."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> NativeChoice | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("extra_buffers"), bool):
            return None
        return NativeChoice(bool(entry["extra_buffers"]), "cached", str(entry.get("reason", "")))

    def put(self, key: str, choice: NativeChoice) -> None:
        data = self._read()
        data[key] = {**asdict(choice), "probed_at": int(time.time())}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            scratch.write_text(json.dumps(data, indent=1, sort_keys=True))
            scratch.replace(self.path)
        except OSError as exc:  # a read-only data directory only costs a probe per start
            logger.warning("could not keep the probe's verdict in %s: %s", self.path, exc)
