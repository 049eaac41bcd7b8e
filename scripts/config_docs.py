"""Regenerate the settings table in docs/configuration.md from ``Settings``.

python scripts/config_docs.py          # rewrite the table
python scripts/config_docs.py --check  # exit 1 if the docs are stale (run by the tests)
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel

from serverroom.settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += rows(annotation, f"{prefix}{name}.")
            continue
        default = field.get_default(call_default_factory=False)
        shown = "(computed)" if field.default_factory is not None else repr(default)
        env = "SERVERROOM_" + (prefix.replace(".", "__") + name).upper()
        out.append(f"| `--{prefix}{name}` | `{env}` | `{shown}` | {field.description or ''} |")
    return out


def table() -> str:
    head = "| flag | environment variable | default | meaning |\n|---|---|---|---|\n"
    return head + "\n".join(rows(Settings)) + "\n"


def render(text: str) -> str:
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    return f"{before}{BEGIN}\n{table()}{END}{after}"


def main() -> None:
    current = DOC.read_text()
    wanted = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if current == wanted else 1)
    DOC.write_text(wanted)


if __name__ == "__main__":
    main()
