"""The code interpreter's sandbox, for real (bubblewrap, as CI installs it): a computation,
files in and out, an infinite loop killed by the limit, no network, nothing outside the
working directory, a memory limit, and the restricted-subprocess fallback."""

from __future__ import annotations

import os
import time

import pytest

from serverroom.hosted.sandbox import Limits, bubblewrap_works, resolve_kind, run_python

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs Linux")


def test_bubblewrap_is_what_auto_uses_here() -> None:
    # CI installs Debian's bubblewrap (.ci/run); without it the isolation below is not there.
    assert bubblewrap_works() and resolve_kind("auto") == "bubblewrap"


async def test_a_computation_with_files_in_and_out() -> None:
    code = (
        "import math\nprint(math.factorial(10))\n"
        "open('out.csv', 'w').write(open('in.txt').read() * 2)\n"
    )
    result = await run_python(code, {"in.txt": b"ab"}, Limits())
    assert result.exit_code == 0 and result.logs == "3628800\n"
    assert result.files == {"out.csv": b"abab"}  # in.txt is unchanged, so not returned


async def test_an_infinite_loop_is_killed_by_the_limit() -> None:
    started = time.monotonic()
    result = await run_python("while True:\n    pass\n", {}, Limits(wall_seconds=3, cpu_seconds=1))
    assert result.exit_code != 0 and time.monotonic() - started < 10
    sleeper = await run_python("import time\ntime.sleep(60)\n", {}, Limits(wall_seconds=1))
    assert sleeper.timed_out and sleeper.exit_code is None


async def test_no_network_and_nothing_outside_its_directory(tmp_path: object) -> None:
    net = await run_python(
        "import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', 5432))\n",
        {},
        Limits(),
    )
    assert net.exit_code != 0 and ("refused" in net.logs or "unreachable" in net.logs.lower())
    dns = await run_python("import socket\nsocket.getaddrinfo('pypi.org', 443)\n", {}, Limits())
    assert dns.exit_code != 0
    secret = os.path.abspath(__file__)  # a file of this checkout, outside the sandbox
    read = await run_python(f"print(open({secret!r}).read())\n", {}, Limits())
    assert read.exit_code != 0 and "No such file" in read.logs
    etc = await run_python("print(open('/etc/passwd').read())\n", {}, Limits())
    assert etc.exit_code != 0
    escape = await run_python("open('../escape.txt', 'w').write('x')\n", {}, Limits())
    assert escape.files == {}


async def test_memory_is_limited() -> None:
    result = await run_python("x = bytearray(3 * 1024 ** 3)\n", {}, Limits(memory_mb=256))
    assert result.exit_code != 0 and "MemoryError" in result.logs


async def test_the_subprocess_fallback_keeps_limits_and_directory() -> None:
    result = await run_python(
        "import os\nprint(os.getcwd().endswith('data'))\nopen('f.txt', 'w').write('1')\n",
        {},
        Limits(),
        kind="subprocess",
    )
    assert result.logs == "True\n" and result.files == {"f.txt": b"1"}
    loop = await run_python("while True: pass\n", {}, Limits(cpu_seconds=1), kind="subprocess")
    assert loop.exit_code != 0
