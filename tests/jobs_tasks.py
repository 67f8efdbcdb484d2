"""Tasks used by the job tests; they run inside real worker processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def sleep_task(params, ctx):
    n = int(params.get("steps", 5))
    for i in range(n):
        print(f"printed by the task {i}")  # must land in the log, not on the event channel
        ctx.progress(i / n, f"step {i}")
        time.sleep(float(params.get("delay", 0.05)))
    return {"slept": n, "pid": os.getpid()}


def segfault_task(params, ctx):
    ctx.progress(0.1, "about to crash")
    os.kill(os.getpid(), signal.SIGSEGV)


def sys_exit_task(params, ctx):
    print("library says goodbye")
    sys.exit(3)


def hard_exit_task(params, ctx):
    os._exit(7)


def error_task(params, ctx):
    from converters.errors import CorruptFile
    raise CorruptFile("/some/file.onnx: damaged")


def spawn_child_task(params, ctx):
    """Start a grandchild that would outlive us unless the whole process group is ended."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(params["pidfile"], "w") as f:
        f.write(str(child.pid))
    ctx.progress(0.5, "child started")
    time.sleep(60)
    return {}


def sleep_spawn_task(params, ctx):
    """Write "worker_pid child_pid" to ``pidfile``, then sleep with a grandchild sleeping too."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(params["pidfile"] + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.replace(params["pidfile"] + ".tmp", params["pidfile"])
    ctx.progress(0.5, "child started")
    time.sleep(float(params.get("seconds", 120)))
    return {}


def alloc_task(params, ctx):
    """Allocate (and touch) ``mb`` MiB in 16 MiB pieces."""
    keep = []
    for _ in range(int(params["mb"]) // 16):
        keep.append(b"\x01" * (16 << 20))
    return {"allocated_mb": 16 * len(keep)}


def children_alloc_task(params, ctx):
    """Start ``n`` programs that each hold ``mb`` MiB: each under a per-process limit, together over it."""
    code = f"import time; x = b'\\x01' * ({int(params['mb'])} << 20); time.sleep(60)"
    kids = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(int(params["n"]))]
    for k in kids:
        k.wait()
    return {}


def gil_hog_task(params, ctx):
    """Hold the GIL in one long C call (no bytecode runs meanwhile, so no Python signal handler or
    thread either), with a grandchild sleeping."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(params["pidfile"] + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.replace(params["pidfile"] + ".tmp", params["pidfile"])
    return {"sum": sum(range(int(params.get("n", 10 ** 11))))}


def leave_child_task(params, ctx):
    """Return at once, leaving a program running that the job started."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    return {"child": child.pid}
