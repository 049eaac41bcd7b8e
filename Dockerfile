# serverroom in a container: llama.cpp is compiled once, in the build stage, for any x86-64 or
# arm64 CPU of its family (GGML_NATIVE=OFF: no instructions of the build machine's own CPU),
# and the runtime image holds only the installed wheels. Start-up probes llama.cpp's fast
# kernels on the machine it runs on (docs/engine.md), so one image serves every host.
#
#   docker build -t serverroom .
#   docker run -p 8000:8000 -v serverroom-data:/data serverroom
#   docker compose up        # two replicas on PostgreSQL + Redis behind a load balancer

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 cmake=3.25.1-1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY src ./src
# The same llama.cpp build as .ci/run's, portable: no tools, examples or tests; libmtmd kept.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# libgomp: llama.cpp's threads; bubblewrap: the code interpreter's sandbox.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1=12.2.0-14+deb12u1 bubblewrap=0.8.0-2+deb12u1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 serverroom \
    && mkdir /data && chown serverroom /data
COPY --from=build /wheels /wheels
# Only the wheels built above (all pinned by the build), nothing from an index.
RUN pip install --no-cache-dir --no-index --find-links /wheels serverroom==0.1.0 && rm -rf /wheels
USER 10001
ENV SERVERROOM_HOST=0.0.0.0 \
    SERVERROOM_PORT=8000 \
    SERVERROOM_DATA_DIR=/data \
    SERVERROOM_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["serverroom", "serve"]
