"""llama.cpp's extra buffer types (weight repacking) on and off, on one GGUF, alternating.

Both measurements use the llama.cpp that ``bench/build_llama_server.sh`` builds (the sources
vendored in the pinned llama-cpp-python sdist):

- **llama-bench**: prompt processing (``pp``) and generation (``tg``) tok/s, one invocation with
  ``--repack 1`` and one with ``--repack 0`` per iteration, the order swapped every iteration;
- **llama-server**: aggregate output tok/s of streamed chat completions (as ``serve_bench.py``
  drives them) at each ``--concurrency``, one server with the default settings and one with
  ``--no-repack`` alive at once, the order swapped every round.

The machine is shared and noisy: every run waits until the CPUs are idle, and measures how
many cores other processes (and the hypervisor's steal time) took on average while it ran.
Medians are printed over all pairs and over the clean ones (both runs of the pair under
``--foreign-limit`` cores).
First it prints which weights llama.cpp repacks (its load log: ``CPU_REPACK`` / ``AMX``
buffers); where it repacks none, both settings run the very same kernels.

    python bench/repack_bench.py                      # the bundled SmolLM2-135M Q4_1
    python bench/repack_bench.py --gguf model.gguf --iterations 10 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from serve_bench import GGUF_REF, build_llama_server, load, start_llama_server

T = TypeVar("T")
TICK = os.sysconf("SC_CLK_TCK")
SETTINGS = ("on", "off")  # extra buffer types: llama.cpp's default / --no-repack


def cpu_busy() -> float:
    """Seconds of CPU used on the whole machine since boot (not idle, not iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


def cpu_own(pids: list[int]) -> float:
    """CPU seconds of this process, its waited-for children and ``pids``."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def wait_idle(idle: float = 0.9, seconds: int = 2, give_up: float = 900) -> None:
    """Return once the CPUs were at least ``idle`` idle for ``seconds`` seconds in a row."""
    deadline = time.monotonic() + give_up
    calm = 0
    before = (cpu_busy(), time.monotonic())
    while calm < seconds and time.monotonic() < deadline:
        time.sleep(1)
        now = (cpu_busy(), time.monotonic())
        used = (now[0] - before[0]) / ((now[1] - before[1]) * (os.cpu_count() or 1))
        calm = calm + 1 if used <= 1 - idle else 0
        before = now


def measured(run: Callable[[], T], pids: list[int]) -> tuple[T, float]:
    """``run()``'s result and the cores other processes used meanwhile, on average."""
    wait_idle()
    busy, own, started = cpu_busy(), cpu_own(pids), time.monotonic()
    result = run()
    other = (cpu_busy() - busy) - (cpu_own(pids) - own)
    return result, other / (time.monotonic() - started)


def repacked(bench: Path, gguf: Path) -> str:
    """The model buffers llama.cpp allocates with the extra buffer types on."""
    out = subprocess.run(
        [str(bench), "-m", str(gguf), "-p", "0", "-n", "1", "-r", "1", "--repack", "1", "-v"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    lines = {
        line.split(":", 1)[1].strip() for line in out.splitlines() if "model buffer size" in line
    }
    return "; ".join(sorted(lines))


def summary(label: str, pairs: list[tuple[float, float, float]], limit: float) -> None:
    """Medians of (on, off, foreign CPU) pairs: all of them and the clean ones."""
    for kind, chosen in (("all", pairs), ("clean", [p for p in pairs if p[2] < limit])):
        if not chosen:
            print(f"{label:<8} {kind:<5} no pairs")
            continue
        on = [p[0] for p in chosen]
        off = [p[1] for p in chosen]
        a, b = statistics.median(on), statistics.median(off)
        paired = statistics.median(x / y for x, y in zip(on, off, strict=True))
        print(
            f"{label:<8} {kind:<5} n={len(chosen):<2} on {a:7.1f}  off {b:7.1f} tok/s"
            f"  ratio {a / b:5.3f}  paired {paired:5.3f}"
            f"  (on {min(on):.1f}-{max(on):.1f}, off {min(off):.1f}-{max(off):.1f})"
        )


def llama_bench(bench: Path, gguf: Path, args: argparse.Namespace) -> None:
    print(f"\n== llama-bench -t {args.threads} -p {args.prompt} -n {args.gen} -r 3 ==")
    cmd = [str(bench), "-m", str(gguf), "-t", str(args.threads), "-r", "3", "-o", "csv"]
    cmd += ["-p", str(args.prompt), "-n", str(args.gen)]
    results: dict[str, list[tuple[float, float, float]]] = {}
    for i in range(args.iterations):
        tps: dict[tuple[str, str], float] = {}
        foreign = 0.0
        for setting in SETTINGS if i % 2 == 0 else SETTINGS[::-1]:
            repack = "1" if setting == "on" else "0"
            out, other = measured(
                lambda r=repack: (
                    subprocess.run(
                        [*cmd, "--repack", r], capture_output=True, text=True, check=True
                    ).stdout
                ),
                [],
            )
            foreign = max(foreign, other)
            for row in csv.DictReader(out.splitlines()):
                test = f"pp{row['n_prompt']}" if row["n_prompt"] != "0" else f"tg{row['n_gen']}"
                tps[(test, setting)] = float(row["avg_ts"])
        line = "  ".join(f"{t} {s} {v:6.1f}" for (t, s), v in sorted(tps.items()))
        print(f"iteration {i + 1}: {line}  (other processes: {foreign:.2f} cores)", flush=True)
        for test in sorted({t for t, _ in tps}):
            results.setdefault(test, []).append((tps[(test, "on")], tps[(test, "off")], foreign))
    for test, pairs in results.items():
        summary(test, pairs, args.foreign_limit)


def llama_server(binary: Path, gguf: Path, args: argparse.Namespace, data: Path) -> None:
    print(f"\n== llama-server, {args.max_tokens} tokens a request, on vs --no-repack ==")
    servers = {
        s: start_llama_server(binary, gguf, args, data / f"llama-server-{s}.log", repack=s == "on")
        for s in SETTINGS
    }
    try:
        for server in servers.values():
            server.wait()
            asyncio.run(load(server, 4, 8, 16))  # warm-up
        results: dict[int, list[tuple[float, float, float]]] = {}
        for rnd in range(args.rounds):
            for conc in args.concurrency:
                tps: dict[str, float] = {}
                foreign = 0.0
                for setting in SETTINGS if rnd % 2 == 0 else SETTINGS[::-1]:
                    server = servers[setting]
                    (tps[setting], _), other = measured(
                        lambda s=server, c=conc: asyncio.run(
                            load(s, c, max(c * 2, 4), args.max_tokens)
                        ),
                        [s.proc.pid for s in servers.values()],
                    )
                    foreign = max(foreign, other)
                print(
                    f"round {rnd + 1} c={conc:<3} on {tps['on']:6.1f}  off {tps['off']:6.1f}"
                    f" tok/s  (other processes: {foreign:.2f} cores)",
                    flush=True,
                )
                results.setdefault(conc, []).append((tps["on"], tps["off"], foreign))
        for conc, pairs in results.items():
            summary(f"c={conc}", pairs, args.foreign_limit)
    finally:
        for server in servers.values():
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gguf", type=Path, help="default: the bundled SmolLM2-135M Q4_1")
    parser.add_argument("--iterations", type=int, default=10, help="llama-bench pairs")
    parser.add_argument("--prompt", type=int, default=512, help="llama-bench -p")
    parser.add_argument("--gen", type=int, default=128, help="llama-bench -n")
    parser.add_argument("--rounds", type=int, default=10, help="llama-server rounds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--ctx", type=int, default=2048, help="context tokens per slot")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument(
        "--foreign-limit",
        type=float,
        default=0.05,
        help="cores taken by other processes above which a pair is not clean",
    )
    parser.add_argument("--skip", choices=("llama-bench", "llama-server"), action="append")
    args = parser.parse_args()
    skip = set(args.skip or ())

    from serverroom.catalog import locate_weights

    gguf = args.gguf or locate_weights(GGUF_REF)
    binary = build_llama_server()
    bench = binary.with_name("llama-bench")
    print(f"{gguf.name}: {repacked(bench, gguf)}", flush=True)
    if "llama-bench" not in skip:
        llama_bench(bench, gguf, args)
    if "llama-server" not in skip:
        llama_server(binary, gguf, args, Path(tempfile.mkdtemp(prefix="sr-repack-")))


if __name__ == "__main__":
    main()
