"""``serverroom doctor``: one block of facts about this install, to read or paste in a bug report.

It reports the machine (CPU and the features llama.cpp's kernels use), the llama.cpp build, the
native settings the engine chooses for the default model (probing them now if no verdict is
kept yet), whether the database and Redis answer, and which model files are found. It changes
nothing but the probe's cached verdict.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from serverroom import __version__
from serverroom.catalog import Catalog, ModelEntry, locate_weights
from serverroom.settings import Settings


@dataclass
class Report:
    """Sections of (name, value) lines, in the order they were added."""

    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, section: str, name: str, value: str) -> None:
        self.sections.setdefault(section, []).append((name, value))

    def problem(self, section: str, name: str, value: str) -> None:
        self.add(section, name, f"PROBLEM: {value}")
        self.problems.append(f"{section} {name}: {value}")

    def render(self) -> str:
        width = max((len(n) for rows in self.sections.values() for n, _ in rows), default=0)
        lines: list[str] = []
        for section, rows in self.sections.items():
            lines.append(f"[{section}]")
            lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
        lines.append(f"problems: {len(self.problems)}")
        return "\n".join(lines)


def _mask(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _machine(report: Report) -> None:
    from serverroom.engine.llamacpp import machine

    report.add("machine", "serverroom", __version__)
    report.add("machine", "python", f"{platform.python_version()} ({sys.executable})")
    report.add("machine", "os", f"{platform.system()} {platform.release()} {platform.machine()}")
    report.add("machine", "cpu", f"{machine.cpu_model()}, {os.cpu_count()} logical cores")
    report.add("machine", "cpu features", " ".join(machine.cpu_features()) or "(none read)")
    report.add("llama.cpp", "llama-cpp-python", machine.llama_version())
    report.add("llama.cpp", "build", machine.llama_system_info())


def _native(report: Report, settings: Settings, entry: ModelEntry, probe: bool) -> None:
    from serverroom.engine.llamacpp.native import NativeProbeError, Probe, cached_choice, choose

    if entry.gguf is None:
        return
    check = Probe(locate_weights(entry.gguf), entry.context_length, settings.engine)
    mode = settings.engine.extra_buffers
    report.add("llama.cpp", "extra_buffers", mode)
    if mode == "auto" and not probe:
        cached = cached_choice(check, settings.data_dir)
        report.add("llama.cpp", "settings", cached.describe() if cached else "not probed yet")
        return
    try:
        choice = choose(check, mode=mode, cache_dir=settings.data_dir)
    except NativeProbeError as exc:
        report.problem("llama.cpp", "settings", str(exc))
        return
    report.add("llama.cpp", "settings", f"{entry.target}: {choice.describe()}")


def _database(report: Report, settings: Settings) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from serverroom.storage.db import sync_url

    url = settings.resolved_database_url()
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and not Path(parsed.database or "").exists():
        report.add("storage", "database", f"{_mask(url)} (created on the first serve)")
        return
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        report.add("storage", "database", f"{_mask(url)} (reachable)")
    except Exception as exc:
        report.problem("storage", "database", f"{_mask(url)}: {type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


def _redis(report: Report, settings: Settings) -> None:
    if not settings.redis_url:
        report.add("storage", "redis", "not configured (single replica)")
        return
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
        report.add("storage", "redis", f"{_mask(settings.redis_url)} (reachable)")
    except Exception as exc:
        report.problem("storage", "redis", f"{_mask(settings.redis_url)}: {exc}")
    finally:
        client.close()


def _models(report: Report, catalog: Catalog, settings: Settings) -> ModelEntry | None:
    default: ModelEntry | None = None
    for entry in catalog.real_models():
        ref = entry.gguf or entry.options.get("weights")
        if entry.id == settings.default_model:
            default = entry
        if ref is None:
            report.add("models", entry.id, f"{entry.backend} (no local weights)")
            continue
        try:
            path = locate_weights(str(ref))
        except FileNotFoundError as exc:
            report.problem("models", entry.id, str(exc))
            continue
        if not path.exists():
            report.problem("models", entry.id, f"{path} does not exist")
            continue
        size = (
            sum(f.stat().st_size for f in path.rglob("*")) if path.is_dir() else path.stat().st_size
        )
        report.add("models", entry.id, f"{path} ({size / 2**20:.0f} MiB)")
    return default


def diagnose(
    settings: Settings, *, probe: bool = True, say: Callable[[str], None] = print
) -> Report:
    """Every check, in order; ``say`` hears about the slow step (the probe) before it runs."""
    report = Report()
    _machine(report)
    report.add("serverroom", "data_dir", str(settings.data_dir))
    report.add("serverroom", "default_model", settings.default_model)
    report.add("serverroom", "auth.mode", settings.auth.mode)
    e = settings.engine
    threads = e.threads or os.cpu_count()
    shape = f"{e.slots} slots x {e.slot_context} tokens, {threads} threads"
    report.add("serverroom", "engine", f"{e.kind}, {shape}")
    catalog = Catalog.load(settings.catalog_file)
    default = _models(report, catalog, settings)
    if default is None:
        report.problem("models", settings.default_model, "the default model is not in the catalog")
    elif default.backend == "llamacpp" and settings.engine.kind == "llamacpp":
        if probe:
            say("probing llama.cpp for the default model (a few seconds the first time)...")
        _native(report, settings, default, probe)
    _database(report, settings)
    _redis(report, settings)
    return report
