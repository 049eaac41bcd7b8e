"""The native-settings choice: forced modes, probing order, the verdict cache and its key.

The child process is replaced here by a recorded outcome; tests/live/test_native_live.py runs
the real child, with real faults.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serverroom.engine.llamacpp import native
from serverroom.engine.llamacpp.native import (
    NativeProbeError,
    Probe,
    ProbeOutcome,
    cached_choice,
    choose,
)
from serverroom.settings import EngineSettings

FAULT = (
    "Fatal Python error: Segmentation fault\n\nThread 0x1 (most recent call first):\n"
    '  File "threading.py", line 331 in wait\n\nCurrent thread 0x2 (most recent call first):\n'
    '  File "scheduler.py", line 250 in _decode\n  File "scheduler.py", line 204 in _run\n'
)


class Recorded:
    """Stands in for the child process: one outcome per extra-buffers setting."""

    def __init__(self, fast: bool, safe: bool = True) -> None:
        self.outcomes = {True: fast, False: safe}
        self.calls: list[bool] = []

    def __call__(self, probe: Probe, *, extra_buffers: bool) -> ProbeOutcome:
        self.calls.append(extra_buffers)
        ok = self.outcomes[extra_buffers]
        return ProbeOutcome(ok, "fine" if ok else native._failure(-11, FAULT.encode()))


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    return path


def _probe(gguf: Path, **settings: object) -> Probe:
    return Probe(gguf, 2048, EngineSettings(**settings))  # type: ignore[arg-type]


def _record(monkeypatch: pytest.MonkeyPatch, fast: bool, safe: bool = True) -> Recorded:
    recorded = Recorded(fast, safe)
    monkeypatch.setattr(Probe, "run", lambda self, **kw: recorded(self, **kw))
    return recorded


@pytest.mark.parametrize(("mode", "expected"), [("on", True), ("off", False)])
def test_a_forced_mode_runs_no_probe(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, expected: bool
) -> None:
    recorded = _record(monkeypatch, fast=False, safe=False)
    choice = choose(_probe(gguf), mode=mode, cache_dir=tmp_path)
    assert choice.extra_buffers is expected and choice.how == "forced"
    assert recorded.calls == []


def test_the_fast_settings_are_kept_when_the_probe_passes(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = _record(monkeypatch, fast=True)
    first = choose(_probe(gguf), mode="auto", cache_dir=tmp_path)
    assert first.extra_buffers and first.how == "probed"
    again = choose(_probe(gguf), mode="auto", cache_dir=tmp_path)
    assert again.extra_buffers and again.how == "cached"
    assert recorded.calls == [True]  # the second start asked nobody


def test_a_crash_with_the_fast_settings_falls_back_to_the_safe_ones(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = _record(monkeypatch, fast=False, safe=True)
    choice = choose(_probe(gguf), mode="auto", cache_dir=tmp_path)
    assert not choice.extra_buffers and choice.how == "probed"
    assert "killed by SIGSEGV" in choice.reason
    assert "Segmentation fault" in choice.reason and "scheduler.py" in choice.reason
    assert recorded.calls == [True, False]
    kept = cached_choice(_probe(gguf), tmp_path)
    assert kept is not None and not kept.extra_buffers and kept.reason == choice.reason
    assert "extra buffer types off" in choice.describe()


def test_when_both_settings_fail_nothing_is_loaded_or_kept(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(monkeypatch, fast=False, safe=False)
    with pytest.raises(NativeProbeError, match=r"cannot run model\.gguf on this machine"):
        choose(_probe(gguf), mode="auto", cache_dir=tmp_path)
    assert cached_choice(_probe(gguf), tmp_path) is None


def test_the_verdict_is_per_model_file_and_engine_shape(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = _record(monkeypatch, fast=True)
    choose(_probe(gguf), mode="auto", cache_dir=tmp_path)
    assert _probe(gguf).key() == _probe(gguf).key()
    assert _probe(gguf, slots=8).key() != _probe(gguf).key()
    assert _probe(gguf, kv_unified=True).key() != _probe(gguf).key()
    choose(_probe(gguf, slots=8), mode="auto", cache_dir=tmp_path)
    gguf.write_bytes(b"GGUF" + bytes(128))  # another model file at the same path
    choose(_probe(gguf), mode="auto", cache_dir=tmp_path)
    assert recorded.calls == [True, True, True]


def test_an_unreadable_cache_only_costs_a_probe(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / native.CACHE_FILE).write_text("{not json")
    recorded = _record(monkeypatch, fast=True)
    assert choose(_probe(gguf), mode="auto", cache_dir=tmp_path).how == "probed"
    assert recorded.calls == [True]
    assert choose(_probe(gguf), mode="auto", cache_dir=tmp_path).how == "cached"


def test_failure_reasons_name_the_signal_or_status() -> None:
    assert native._failure(-11, FAULT.encode()).startswith("the probe was killed by SIGSEGV")
    assert native._failure(-6, b"") == "the probe was killed by SIGABRT"
    detail = native._failure(1, b"Traceback ...\nRuntimeError: llama.cpp could not load x\n")
    assert detail == "the probe exited with status 1 (RuntimeError: llama.cpp could not load x)"
