"""The model catalog: which model names exist, what runs them, and what they cost.

The catalog is a TOML file shipped with the package (``models.toml``), merged with an optional
user file. Aliases (``alias_of``) let the platform's names (``gpt-4.1``, ``o3`` …) resolve to a
local model while keeping their own prices. An unknown name is ``ModelNotFoundError`` (404
``model_not_found``): a request is never silently served by another model.
"""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from serverroom.errors import ModelNotFoundError

Backend = Literal["llamacpp", "fake", "upstream", "numpy"]
Kind = Literal["chat", "embedding"]


@dataclass(frozen=True)
class Pricing:
    """US dollars per 1M tokens."""

    input: float = 0.0
    cached_input: float = 0.0
    output: float = 0.0

    def cost(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> float:
        """Cost in dollars of one request's tokens (cached tokens are part of ``input_tokens``)."""
        uncached = max(0, input_tokens - cached_tokens)
        return (
            uncached * self.input + cached_tokens * self.cached_input + output_tokens * self.output
        ) / 1_000_000


@dataclass(frozen=True)
class UpstreamSpec:
    """Where an ``upstream`` model runs: OpenAI-compatible servers (``base_urls`` end in
    ``/v1``) that know it as ``model``. Timeouts are seconds; ``read_timeout`` bounds the wait
    for the first byte and every later one. ``health_interval`` is how often each member is
    probed; ``max_failures`` failures in a row take a member out until a probe passes;
    ``affinity`` sends the turns of a conversation to one member (off: the least loaded)."""

    base_urls: tuple[str, ...]
    model: str
    api_key_env: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    health_interval: float = 5.0
    max_failures: int = 2
    affinity: bool = True


@dataclass(frozen=True)
class ModelEntry:
    """One name clients can use; ``target`` is the real model that runs it."""

    id: str
    target: str
    backend: Backend
    kind: Kind
    gguf: str | None
    context_length: int
    created: int
    owned_by: str
    pricing: Pricing
    options: dict[str, Any] = field(default_factory=dict)
    max_output_tokens: int | None = None
    default_max_output_tokens: int | None = None
    upstream: UpstreamSpec | None = None  # set for ``backend = "upstream"``
    reasoning: bool = False  # a reasoning model: the o-series' parameters (``api.reasoning``)
    # How a reasoning model thinks: "native" (its template and training write a think block)
    # or "scaffold" (serverroom opens the block and holds it to a budget); the block's tags.
    thinking: Literal["native", "scaffold"] = "scaffold"
    think_tags: tuple[str, str] = ("<think>", "</think>")
    # Whether it takes image inputs: None (an upstream's own call), True or False; a local
    # model reads them through its multimodal projector (``mmproj``, a GGUF like ``gguf``).
    vision: bool | None = None
    mmproj: str | None = None

    @property
    def is_alias(self) -> bool:
        return self.id != self.target


class CatalogError(ValueError):
    """The catalog file is malformed."""


def locate_weights(ref: str, base_dir: Path | None = None) -> Path:
    """Resolve a weights reference: ``pkg:<package>/<file>`` or a filesystem path."""
    if ref.startswith("pkg:"):
        package, _, name = ref[4:].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package {package!r} holding {name!r} is not installed")
        for location in spec.submodule_search_locations:
            candidate = Path(location) / name
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"{name!r} not found in package {package!r}")
    path = Path(ref).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"cannot read model catalog {path}: {exc}") from exc
    models = data.get("model", [])
    if not isinstance(models, list):
        raise CatalogError(f"{path}: [[model]] must be an array of tables")
    for raw in models:
        raw.setdefault("_base_dir", str(path.parent))
    return models


def _build(raw: dict[str, Any], real: dict[str, dict[str, Any]]) -> ModelEntry:
    model_id = str(raw["id"])
    target_id = str(raw.get("alias_of", model_id))
    base = real.get(target_id)
    if base is None:
        raise CatalogError(f"model {model_id!r} is an alias of unknown model {target_id!r}")
    pricing_raw = raw.get("pricing", base.get("pricing", {}))
    gguf = _weights(base.get("gguf"), base)
    mmproj = _weights(base.get("mmproj"), base)
    return ModelEntry(
        id=model_id,
        target=target_id,
        backend=base.get("backend", "llamacpp"),
        kind=base.get("kind", "chat"),
        gguf=gguf,
        context_length=int(base.get("context_length", 4096)),
        created=int(raw.get("created", base.get("created", 1700000000))),
        owned_by=str(raw.get("owned_by", base.get("owned_by", "serverroom"))),
        pricing=Pricing(**{k: float(v) for k, v in pricing_raw.items()}),
        options=dict(base.get("options", {})),
        max_output_tokens=_optional_int(base.get("max_output_tokens")),
        default_max_output_tokens=_optional_int(base.get("default_max_output_tokens")),
        upstream=_upstream(target_id, base),
        reasoning=bool(raw.get("reasoning", base.get("reasoning", False))),
        thinking=_thinking(raw.get("thinking", base.get("thinking", "scaffold")), model_id),
        think_tags=_tags(raw.get("think_tags", base.get("think_tags")), model_id),
        vision=_vision(raw.get("vision", base.get("vision")), base, model_id),
        mmproj=mmproj,
    )


def _weights(ref: Any, base: dict[str, Any]) -> str | None:
    """A weights reference as the catalog keeps it: ``pkg:`` as is, a path made absolute."""
    if ref is None or str(ref).startswith("pkg:"):
        return None if ref is None else str(ref)
    return str(locate_weights(str(ref), Path(base["_base_dir"])))


def _vision(value: Any, base: dict[str, Any], model_id: str) -> bool | None:
    """Whether a model takes images: an upstream as its entry says (None: its own call); a
    local model when it has a projector."""
    backend = base.get("backend", "llamacpp")
    if base.get("mmproj") is not None:
        if backend != "llamacpp" or value is False:
            raise CatalogError(
                f"model {model_id!r}: mmproj is for a local (llamacpp) model that reads images"
            )
        return True
    if value is None:
        return None if backend == "upstream" else False
    if value and backend != "upstream":
        raise CatalogError(
            f"model {model_id!r}: vision = true needs a multimodal projector (mmproj = the"
            ' projector GGUF) or backend = "upstream"'
        )
    return bool(value)


def _thinking(value: Any, model_id: str) -> Literal["native", "scaffold"]:
    if value == "native":
        return "native"
    if value == "scaffold":
        return "scaffold"
    raise CatalogError(f"model {model_id!r}: thinking must be 'native' or 'scaffold'")


def _tags(value: Any, model_id: str) -> tuple[str, str]:
    if value is None:
        return ("<think>", "</think>")
    if not (
        isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v for v in value)
    ):
        raise CatalogError(f"model {model_id!r}: think_tags must be two strings [open, close]")
    return (value[0], value[1])


def _upstream(model_id: str, raw: dict[str, Any]) -> UpstreamSpec | None:
    if raw.get("backend") != "upstream":
        return None
    urls = raw.get("base_urls") or ([raw["base_url"]] if raw.get("base_url") else [])
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise CatalogError(f"upstream model {model_id!r} needs base_urls, a list of URLs")
    numbers = {
        key: float(raw[key])
        for key in ("connect_timeout", "read_timeout", "health_interval")
        if key in raw
    }
    return UpstreamSpec(
        base_urls=tuple(u.rstrip("/") for u in urls),
        model=str(raw.get("upstream_model", model_id)),
        api_key_env=raw.get("api_key_env"),
        max_failures=int(raw.get("max_failures", 2)),
        affinity=bool(raw.get("affinity", True)),
        **numbers,
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


class Catalog:
    """The merged catalog: the built-in file, then the user's file over it."""

    def __init__(self, entries: list[ModelEntry]) -> None:
        self._entries = {entry.id: entry for entry in entries}

    @classmethod
    def load(cls, user_file: Path | None = None) -> Catalog:
        raws = _read(Path(__file__).with_name("models.toml"))
        if user_file is not None:
            raws += _read(user_file)
        merged: dict[str, dict[str, Any]] = {}
        for raw in raws:
            if "id" not in raw:
                raise CatalogError("every [[model]] needs an id")
            merged[str(raw["id"])] = raw
        real = {k: v for k, v in merged.items() if "alias_of" not in v}
        return cls([_build(raw, real) for raw in merged.values()])

    def resolve(self, name: str) -> ModelEntry:
        """The entry for a model name, or 404 ``model_not_found``."""
        entry = self._entries.get(name)
        if entry is None:
            raise ModelNotFoundError(name)
        return entry

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def real_models(self) -> list[ModelEntry]:
        return [e for e in self._entries.values() if not e.is_alias]
