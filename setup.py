"""Build configuration beyond pyproject.toml: the one C extension (the sampler's draw)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "serverroom.engine.llamacpp._draw",
            ["src/serverroom/engine/llamacpp/_draw.c"],
            extra_compile_args=["-O3"],
        )
    ]
)
