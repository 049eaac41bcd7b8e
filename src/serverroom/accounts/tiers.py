"""Usage tiers: the ladder of spend thresholds and the RPM/TPM limits each tier grants.

The ladder is a TOML file (``tiers.toml`` shipped here, or ``limits.tiers_file``). A project's
tier is the one an admin pinned, else the highest tier whose ``spend_usd`` threshold its
cumulative spend has reached. Limits are looked up per model id (the name the client asked for),
falling back to the catalog target and then to the tier's default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

BUILTIN = Path(__file__).with_name("tiers.toml")


class TierError(ValueError):
    """The tier file is malformed, or a tier name is unknown."""


class ModelLimits(NamedTuple):
    """Requests and tokens a minute that a tier allows one model."""

    rpm: int
    tpm: int


@dataclass(frozen=True)
class Tier:
    name: str
    spend_usd: float
    default: ModelLimits
    models: dict[str, ModelLimits] = field(default_factory=dict)

    def limits_for(self, model: str, target: str | None = None) -> ModelLimits:
        if model in self.models:
            return self.models[model]
        if target is not None and target in self.models:
            return self.models[target]
        return self.default


def _limits(raw: dict[str, Any], base: ModelLimits | None, where: str) -> ModelLimits:
    try:
        rpm = int(raw["rpm"]) if "rpm" in raw else (base.rpm if base else None)
        tpm = int(raw["tpm"]) if "tpm" in raw else (base.tpm if base else None)
    except (TypeError, ValueError) as exc:
        raise TierError(f"{where}: rpm/tpm must be integers") from exc
    if rpm is None or tpm is None or rpm < 1 or tpm < 1:
        raise TierError(f"{where}: needs positive rpm and tpm")
    return ModelLimits(rpm=rpm, tpm=tpm)


class Ladder:
    """Tiers sorted by spend threshold."""

    def __init__(self, tiers: list[Tier]) -> None:
        if not tiers:
            raise TierError("the tier ladder is empty")
        self.tiers = sorted(tiers, key=lambda t: t.spend_usd)
        self._by_name = {t.name: t for t in self.tiers}

    @classmethod
    def load(cls, path: Path | None = None) -> Ladder:
        path = path or BUILTIN
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TierError(f"cannot read tier file {path}: {exc}") from exc
        tiers = []
        for raw in data.get("tier", []):
            name = str(raw.get("name", ""))
            if not name:
                raise TierError(f"{path}: every [[tier]] needs a name")
            default = _limits(raw, None, f"tier {name}")
            models = {
                str(model): _limits(dict(spec), default, f"tier {name} model {model}")
                for model, spec in dict(raw.get("models", {})).items()
            }
            tiers.append(Tier(name, float(raw.get("spend_usd", 0)), default, models))
        return cls(tiers)

    def names(self) -> list[str]:
        return [t.name for t in self.tiers]

    def get(self, name: str) -> Tier:
        tier = self._by_name.get(name)
        if tier is None:
            raise TierError(f"unknown tier {name!r}; known: {', '.join(self.names())}")
        return tier

    def for_spend(self, spend_usd: float) -> Tier:
        """The highest tier whose threshold ``spend_usd`` has reached."""
        current = self.tiers[0]
        for tier in self.tiers:
            if spend_usd + 1e-9 >= tier.spend_usd:
                current = tier
        return current

    def resolve(self, pinned: str | None, spend_usd: float) -> Tier:
        """A project's tier: the pinned one if it still exists, else by spend."""
        if pinned and pinned in self._by_name:
            return self._by_name[pinned]
        return self.for_spend(spend_usd)
