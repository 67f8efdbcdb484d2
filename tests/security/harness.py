"""Fuzz harness: mutated model files through the window's open path, each in a limited child process.

Every case runs :func:`converters.jobs.view_tasks.open_task` itself (the ``open`` job's code: detect,
load, ViewPack) with the real :class:`converters.jobs.worker.Context` writing its events into a job
folder, under a wall-clock limit and a memory limit, and is classified as

    ok          the file opened
    clean       a TensorbridgeError with a one-line message (no newline, no ANSI escape) naming the file
    bug         any other exception escaping, or an error message that breaks those rules
    crash       the process died from a signal or exited without a result
    hang        it ran past the time limit
    memory      it went over the memory budget (MemoryError, the limit hit, or peak RSS over budget)
    code_exec   the case tried to start a process, or a marker file of a payload appeared

Why a fork server: importing torch or TensorFlow costs seconds, a fresh process per case would spend
hours on imports for 10,000 cases. One server process per framework family (``torch``, ``tf``, ``onnx``:
the families :class:`converters.jobs.WorkerPool` uses) imports its framework once, then forks one child
per case; a child costs milliseconds, dies with the case (a crash, an abort in C++, a hang is contained),
and its limits are its own: ``RLIMIT_DATA`` (private writable memory: what grows when a reader trusts a
declared size; ``RLIMIT_AS`` would also count the address space frameworks reserve and never touch) set
to the server's own data size plus the budget, ``alarm`` as a backstop to the server's own deadline, and
its peak RSS from ``wait4``. The server forks before any framework thread pool starts (imports only),
which keeps fork safe; a hang or crash can be confirmed in a fresh worker (``confirm``) to rule out
fork artefacts.

``python -m tests.security.harness serve FAMILY`` is the server (JSON lines on stdin/stdout);
``python -m tests.security.harness replay FILE`` runs one file the same way and prints its outcome.
"""
from __future__ import annotations

import json
import os
import random
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue

from . import mutators as M

ROOT = Path(__file__).resolve().parents[2]
BAD = ("bug", "crash", "hang", "memory", "code_exec")
OUTCOMES = ("ok", "clean") + BAD
SPAWN_EVENTS = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                "os.forkpty", "pty.spawn"}
def _forked_by_probe() -> bool:
    """Whether the os.fork being audited is converters.safety.probe's (it reads a file in a child with a
    time limit; the child stays under this same audit hook)."""
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_filename.endswith(os.path.join("converters", "safety", "probe.py")):
            return True
        f = f.f_back
    return False


MEMORY_WORDS = ("ran out of memory", "bad_alloc", "MemoryError", "Cannot allocate memory", "out of memory")

# Modules each server imports before forking: the job family's preload plus the readers and the pack.
PRELOAD = {
    "torch": ["numpy", "onnx", "torch", "torch.export.pt2_archive._package", "torch._export.serde.serialize",
              "safetensors", "converters.formats.pytorch"],
    "tf": ["numpy", "onnx", "tensorflow", "keras", "h5py", "converters.formats.keras",
           "converters.formats.savedmodel_reader", "converters.formats.tflite_reader"],
    "onnx": ["numpy", "onnx", "converters.formats.onnx_reader"],
}
COMMON = ["converters.formats", "converters.viewpack", "converters.jobs.view_tasks", "converters.jobs.worker"]


# ---- the server and its children --------------------------------------------------------------------
def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _message_problem(msg: str, path: str) -> str | None:
    if "\n" in msg or "\r" in msg:
        return "message has a newline"
    if "\x1b" in msg:
        return "message has an ANSI escape"
    if "Traceback (most recent call last)" in msg or 'File "' in msg:
        return "message has a traceback"
    names = {path, os.path.abspath(path), os.path.basename(path.rstrip("/"))}
    if not any(n and n in msg for n in names):
        return "message does not name the file"
    return None


def _child(req: dict, base_data_kb: int) -> None:
    """Runs in the forked child: limits, then open_task, then an outcome file. Never returns."""
    code = 0
    case_dir = req["dir"]
    out_path = os.path.join(case_dir, "outcome.json")
    spawned: list[str] = []
    try:
        os.setpgid(0, 0)
        os.chdir(case_dir)
        fd = os.open(os.path.join(case_dir, "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        limit = (base_data_kb * 1024) + int(req["mem_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.alarm(int(req["timeout"]) + 2)

        def hook(event, args):
            if event == "os.fork" and _forked_by_probe():
                return  # the engine's own reading probe (converters.safety.probe): our code, not the file's
            if event in SPAWN_EVENTS:
                spawned.append(f"{event}{str(args)[:200]}")
                with open(out_path + ".spawn", "a") as f:
                    f.write(spawned[-1] + "\n")
                raise PermissionError(f"fuzz harness: {event} blocked")

        sys.addaudithook(hook)
        from converters.errors import TensorbridgeError, one_line
        from converters.jobs.view_tasks import open_task
        from converters.jobs.worker import Context

        job_dir = os.path.join(case_dir, "job")
        os.makedirs(job_dir, exist_ok=True)
        ctx = Context(job_dir, os.open(os.path.join(job_dir, "events.jsonl"), os.O_WRONLY | os.O_CREAT, 0o644))
        t0 = time.perf_counter()
        try:
            task = open_task
            if req.get("task"):  # the harness's own tests: a task that hangs, crashes, allocates, spawns
                from converters.jobs.tasks import resolve
                task = resolve(req["task"])
            res = task({"path": req["path"], "trust": bool(req.get("trust"))}, ctx)
            outcome = {"status": "ok", "summary": {k: res.get(k) for k in ("format", "node_count", "param_count")
                                                   if k in res}}
        except TensorbridgeError as exc:
            outcome = {"status": "error", "kind": type(exc).__name__, "message": str(exc),
                       "message_attr": exc.message}
        except MemoryError:
            outcome = {"status": "memory_error", "traceback": traceback.format_exc()[-3000:]}
        except BaseException as exc:  # noqa: BLE001 - everything else is what the fuzzer looks for
            outcome = {"status": "exception", "kind": type(exc).__name__, "message": one_line(exc),
                       "traceback": traceback.format_exc()[-6000:]}
        outcome["seconds"] = time.perf_counter() - t0
        outcome["spawned"] = spawned
        with open(out_path + ".tmp", "w") as f:
            json.dump(outcome, f, default=str)
        os.replace(out_path + ".tmp", out_path)
    except BaseException:  # noqa: BLE001
        code = 3
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def classify(req: dict, status: int | None, timed_out: bool, maxrss_kb: int, base_rss_kb: int) -> dict:
    """The outcome of one finished child, from its exit status, outcome file, log and markers."""
    case_dir = req["dir"]
    out_path = os.path.join(case_dir, "outcome.json")
    try:
        outcome = json.loads(Path(out_path).read_text())
    except (OSError, ValueError):
        outcome = None
    try:
        log = Path(case_dir, "log.txt").read_text(errors="replace")[-4000:]
    except OSError:
        log = ""
    res: dict = {"peak_mb": round(max(0, maxrss_kb - base_rss_kb) / 1024, 1)}
    if timed_out:
        res.update(outcome="hang", detail=f"still running after {req['timeout']} s")
    elif status is not None and os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        if sig == "SIGALRM":
            res.update(outcome="hang", detail="alarm fired")
        elif sig == "SIGKILL" or any(w in log for w in MEMORY_WORDS):
            res.update(outcome="memory", detail=f"died from {sig}; log: {log.strip()[-300:]}")
        else:
            res.update(outcome="crash", detail=f"died from {sig}; log: {log.strip()[-300:]}")
    elif outcome is None:
        code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else status
        kind = "memory" if any(w in log for w in MEMORY_WORDS) else "crash"
        res.update(outcome=kind, detail=f"exited with code {code} without a result; log: {log.strip()[-300:]}")
    elif outcome["status"] == "ok":
        res.update(outcome="ok", detail=json.dumps(outcome.get("summary")))
    elif outcome["status"] == "memory_error":
        res.update(outcome="memory", detail="MemoryError: " + outcome.get("traceback", "")[-300:])
    elif outcome["status"] == "exception":
        res.update(outcome="bug", detail=f"{outcome['message']}", traceback=outcome.get("traceback"))
    else:
        msg = outcome["message"]
        problem = _message_problem(msg, req["path"]) or (
            _message_problem(outcome["message_attr"], req["path"]) if outcome["message_attr"] != msg else None)
        if any(w in msg for w in MEMORY_WORDS[:1]) or "MemoryError" in msg:
            res.update(outcome="memory", detail=f"{outcome['kind']}: {msg}")
        elif problem:
            res.update(outcome="bug", detail=f"{problem}: {outcome['kind']}: {msg!r}")
        else:
            res.update(outcome="clean", detail=f"{outcome['kind']}: {msg}")
    if res["outcome"] in ("ok", "clean") and res["peak_mb"] > req["mem_mb"]:
        res.update(outcome="memory", detail=f"peak RSS {res['peak_mb']} MB over {req['mem_mb']} MB; " + res["detail"])
    spawned = (outcome or {}).get("spawned") or []
    try:
        spawned = spawned or Path(out_path + ".spawn").read_text().splitlines()
    except OSError:
        pass
    markers = []
    if req.get("marker_dir") and os.path.isdir(req["marker_dir"]):
        markers = sorted(os.listdir(req["marker_dir"]))
        for m in markers:
            try:
                os.remove(os.path.join(req["marker_dir"], m))
            except OSError:
                pass
    if spawned or markers:
        res.update(outcome="code_exec", detail=f"spawned={spawned} markers={markers}; was: {res['detail']}")
    res["detail"] = str(res.get("detail", ""))[:2000]
    return res


def run_one(req: dict, base_data_kb: int, base_rss_kb: int) -> dict:
    """Fork a child for one case, wait with a deadline, classify."""
    t0 = time.perf_counter()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(req, base_data_kb)
    timed_out = False
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], float(req["timeout"]))
        if not ready:
            timed_out = True
            for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    target()
                except (ProcessLookupError, PermissionError):
                    pass
        _, status, ru = os.wait4(pid, 0)
    finally:
        os.close(fd)
    try:  # grandchildren a case may have left behind
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    res = classify(req, status, timed_out, ru.ru_maxrss, base_rss_kb)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


def serve(family: str) -> int:
    """The fork server: import the family's frameworks, then one forked child per request line."""
    import importlib

    for mod in PRELOAD.get(family, []) + COMMON:
        try:
            importlib.import_module(mod)
        except Exception as exc:  # noqa: BLE001 - the cases will show what is missing
            print(f"preload {mod} failed: {exc}", file=sys.stderr)
    base_data, base_rss = _status_kb("VmData"), _status_kb("VmRSS")
    out = sys.stdout
    out.write(json.dumps({"ready": family, "data_kb": base_data, "rss_kb": base_rss}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        try:
            res = run_one(req, base_data, base_rss)
        except Exception as exc:  # noqa: BLE001 - the harness's own failure, reported as such
            res = {"outcome": "crash", "detail": f"harness: {exc!r}", "seconds": 0}
        res["id"] = req["id"]
        out.write(json.dumps(res) + "\n")
        out.flush()
    return 0


def server_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
                "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "MALLOC_ARENA_MAX": "2",
                "CUDA_VISIBLE_DEVICES": "", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


class Server:
    """A running fork server for one family."""

    def __init__(self, family: str, log_dir: str):
        self.family = family
        self.log = open(os.path.join(log_dir, f"server-{family}.log"), "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.security.harness", "serve", family],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     cwd=str(ROOT), env=server_env(), text=True, bufsize=1)
        hello = self.proc.stdout.readline()
        if not hello:
            raise RuntimeError(f"the {family} fork server did not start; see {self.log.name}")
        self.info = json.loads(hello)

    def run(self, req: dict) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.family} fork server died; see {self.log.name}")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---- seeds and cases ------------------------------------------------------------------------------------
@dataclass
class Seed:
    name: str          # short label, also the table row ("format")
    path: str
    kind: str          # mutator kind: zip, protobuf, flatbuffer, safetensors, hdf5, pickle, savedmodel
    fmt: str           # the row in the per-format table


# (module, file, kind, format row)
MODEL_SEEDS = [
    ("onnx_models", "cnn_legacy.onnx", "protobuf", "onnx"),
    ("onnx_models", "if_subgraph.onnx", "protobuf", "onnx"),
    ("onnx_models", "keras_tf2onnx.onnx", "protobuf", "onnx"),
    ("torch_models", "cond.pt2", "zip", "pt2"),
    ("torch_models", "gated_script.pt", "zip", "torchscript"),
    ("torch_models", "mixed.pth", "zip", "torch.save zip"),
    ("torch_models", "cnn_state.pth", "zip", "torch.save zip"),
    ("torch_models", "cnn_module.pt", "zip", "torch.save zip"),
    ("torch_models", "cnn_legacy.pth", "pickle", "torch.save legacy"),
    ("torch_models", "cnn_lightning.ckpt", "zip", "ckpt"),
    ("torch_models", "cnn.safetensors", "safetensors", "safetensors"),
    ("tf_models", "mlp.keras", "zip", "keras"),
    ("tf_models", "cnn.keras", "zip", "keras"),
    ("tf_models", "cnn.h5", "hdf5", "h5"),
    ("tf_models", "tk_cnn.h5", "hdf5", "h5"),
    ("tf_models", "module_savedmodel", "savedmodel", "savedmodel"),
    ("tf_models", "cnn.tflite", "flatbuffer", "tflite"),
    ("tf_models", "while.tflite", "flatbuffer", "tflite"),
]
FORMATS = ("onnx", "pt2", "torchscript", "torch.save zip", "torch.save legacy", "ckpt", "safetensors", "keras",
           "h5", "savedmodel", "tflite", "payload")
WRONG_EXTS = [".onnx", ".pt", ".pt2", ".pth", ".ckpt", ".keras", ".h5", ".tflite", ".safetensors", ".bin", ".txt", ""]


def model_seeds() -> list[Seed]:
    from tests.conftest import build_models

    seeds = []
    for module, name, kind, fmt in MODEL_SEEDS:
        folder = build_models(module)
        path = folder / name
        if path.exists():
            seeds.append(Seed(name, str(path), kind, fmt))
    return seeds


def _savedmodel_target(folder: Path, rng: random.Random) -> Path:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    pb = [p for p in files if p.name == "saved_model.pb"]
    return pb[0] if pb and rng.random() < 0.7 else rng.choice(files)


def _kind_of_file(p: Path) -> str:
    return "protobuf" if p.suffix == ".pb" else "raw"


@dataclass
class Case:
    id: int
    seed: Seed
    mutator: str
    path: str = ""
    dir: str = ""
    ext: str | None = None
    result: dict = field(default_factory=dict)


def plan(seeds: list[Seed], n: int, run_seed: int) -> list[tuple[int, Seed, str, str | None]]:
    """(id, seed, mutator, extension override) for n cases: seeds round-robin, mutators weighted by kind."""
    out = []
    for i in range(n):
        rng = random.Random(f"{run_seed}:plan:{i}")
        seed = seeds[i % len(seeds)]
        kind = seed.kind if seed.kind != "savedmodel" else "protobuf"
        table = M.mutators_for(kind)
        names = sorted(table)
        mut = rng.choices(names, [table[k] for k in names])[0]
        ext = None
        if seed.kind != "savedmodel" and rng.random() < 0.06:
            ext = rng.choice(WRONG_EXTS)
        out.append((i, seed, mut, ext))
    return out


def make_case(i: int, seed: Seed, mut: str, ext: str | None, run_seed: int, work: str, table: dict) -> Case:
    """Write case i into its own folder under ``work``; deterministic in (run_seed, i)."""
    rng = random.Random(f"{run_seed}:case:{i}")
    case_dir = Path(work) / f"case-{i:05d}"
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    src = Path(seed.path)
    if src.is_dir():
        dst = case_dir / src.name
        shutil.copytree(src, dst)
        target = _savedmodel_target(dst, rng)
        data = target.read_bytes()
        fn = table[mut] if (_kind_of_file(target) == "protobuf" or mut in M.GENERIC) else M.bit_flip
        target.write_bytes(fn(data, rng) if data else b"\x00")
        case = Case(i, seed, f"{mut}@{target.relative_to(dst)}", str(dst), str(case_dir), ext)
    else:
        stem, suffix = os.path.splitext(src.name)
        dst = case_dir / (stem + (suffix if ext is None else ext))
        data = src.read_bytes()
        try:
            new = table[mut](data, rng)
        except Exception as exc:  # noqa: BLE001 - a mutator that does not fit this seed: fall back
            new = M.bit_flip(data, rng)
            mut = f"{mut}!{type(exc).__name__}"
        dst.write_bytes(new)
        case = Case(i, seed, mut, str(dst), str(case_dir), ext)
    return case


def family_for(path: str) -> str:
    from converters.jobs import family_of

    try:
        return family_of(path)
    except Exception:  # noqa: BLE001 - detect's own failures are the child's to report
        return "onnx"


# ---- the driver -----------------------------------------------------------------------------------------
class Fuzzer:
    """Generate cases, route each to its family's fork server, collect outcomes, keep failing cases."""

    def __init__(self, seeds: list[Seed], *, work: str | None = None, timeout: float = 20.0, mem_mb: int = 2048,
                 run_seed: int = 0, keep_dir: str | None = None, marker_dir: str | None = None,
                 bomb_dir: str | None = None, progress=None):
        self.seeds = seeds
        self.work = work or tempfile.mkdtemp(prefix="tensorbridge-fuzz-")
        os.makedirs(self.work, exist_ok=True)
        self.keep_dir = keep_dir or os.path.join(self.work, "failures")
        self.timeout, self.mem_mb, self.run_seed = timeout, mem_mb, run_seed
        self.marker_dir = marker_dir
        self.table = M.all_mutators(bomb_dir or str(ROOT / "tests" / ".cache" / "security"))
        self.servers: dict[str, Server] = {}
        self.progress = progress
        self.cases: list[Case] = []

    def _server(self, family: str) -> Server:
        if family not in self.servers:
            self.servers[family] = Server(family, self.work)
        return self.servers[family]

    def run(self, n: int) -> list[Case]:
        planned = plan(self.seeds, n, self.run_seed)
        queues: dict[str, Queue] = {f: Queue(maxsize=8) for f in ("torch", "tf", "onnx")}
        done: list[Case] = []
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker(family: str) -> None:
            q = queues[family]
            while True:
                case = q.get()
                if case is None:
                    return
                try:
                    srv = self._server(family)
                    case.result = srv.run({"id": case.id, "path": case.path, "dir": case.dir,
                                           "timeout": self.timeout, "mem_mb": self.mem_mb,
                                           "marker_dir": self.marker_dir})
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    case.result = {"outcome": "crash", "detail": f"harness: {exc}", "seconds": 0}
                    self.servers.pop(family, None)
                case.result["family"] = family
                self._finish(case)
                with lock:
                    done.append(case)
                    if self.progress:
                        self.progress(len(done), n, case)

        threads = [threading.Thread(target=worker, args=(f,), daemon=True) for f in queues]
        for t in threads:
            t.start()
        try:
            for i, seed, mut, ext in planned:
                case = make_case(i, seed, mut, ext, self.run_seed, self.work, self.table)
                queues[family_for(case.path)].put(case)
        finally:
            for q in queues.values():
                q.put(None)
            for t in threads:
                t.join()
        self.cases = sorted(done, key=lambda c: c.id)
        return self.cases

    def _finish(self, case: Case) -> None:
        if case.result.get("outcome") in BAD:
            dest = Path(self.keep_dir) / f"case-{case.id:05d}-{case.result['outcome']}"
            if dest.exists():
                shutil.rmtree(dest)
            shutil.move(case.dir, dest)
            rel = Path(case.path).relative_to(case.dir)
            case.dir, case.path = str(dest), str(dest / rel)
            case.result["saved"] = case.path
            (dest / "repro.sh").write_text(reproducer(case, self.run_seed))
        else:
            shutil.rmtree(case.dir, ignore_errors=True)

    def close(self) -> None:
        for s in self.servers.values():
            s.close()
        self.servers.clear()


def reproducer(case: Case, run_seed: int) -> str:
    py = f"{ROOT}/.venv/bin/python"
    return (f"#!/bin/sh\n# {case.seed.name} + {case.mutator}: {case.result.get('outcome')}: "
            f"{str(case.result.get('detail'))[:300]!s}\n"
            f"cd {ROOT}\n"
            f"# the window's open path, in a limited child (as the fuzzer ran it):\n"
            f"{py} -m tests.security.harness replay '{case.path}'\n"
            f"# the same through a fresh worker and the CLI:\n"
            f"{ROOT}/.venv/bin/tensorbridge inspect '{case.path}'\n"
            f"# regenerate the case from its seed:\n"
            f"{py} benchmarks/fuzz.py --replay {case.id} --seed {run_seed}\n")


def table_rows(cases: list[Case]) -> list[dict]:
    by: dict[str, Counter] = defaultdict(Counter)
    secs: dict[str, float] = defaultdict(float)
    for c in cases:
        for key in (c.seed.fmt, "total"):
            by[key][c.result.get("outcome", "crash")] += 1
            by[key]["cases"] += 1
            secs[key] += c.result.get("seconds", 0)
    order = [f for f in FORMATS if f in by] + [f for f in by if f not in FORMATS and f != "total"] + ["total"]
    return [{"format": f, "cases": by[f]["cases"], **{o: by[f][o] for o in OUTCOMES}, "seconds": round(secs[f], 1)}
            for f in order if f in by]


def format_table(rows: list[dict], wall: float | None = None) -> str:
    head = ["format", "cases", "ok", "clean errors", "bugs", "crashes", "hangs", "over memory", "code exec", "time s"]
    keys = ["format", "cases", "ok", "clean", "bug", "crash", "hang", "memory", "code_exec", "seconds"]
    widths = [max(len(h), *(len(str(r[k])) for r in rows)) for h, k in zip(head, keys)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    for r in rows:
        lines.append("  ".join(str(r[k]).ljust(w) if i == 0 else str(r[k]).rjust(w)
                               for i, (k, w) in enumerate(zip(keys, widths))))
    if wall is not None:
        lines.append(f"wall time {wall:.1f} s (time s: sum of per-case seconds, fork to outcome)")
    return "\n".join(lines)


def confirm(case: Case, timeout: float = 60.0) -> str:
    """Run a failing case again in a fresh worker (the real ``open`` job): its outcome there, in words."""
    from converters.jobs import JobFailed, run_job

    try:
        _, job = run_job("open", {"path": case.path}, timeout=timeout)
        job.cleanup()
        return "opened in a fresh worker"
    except JobFailed as exc:
        return f"fresh worker: {exc.kind}: {exc}"[:400]


def replay(path: str, timeout: float = 60.0, mem_mb: int = 2048, trust: bool = False) -> dict:
    """One file through the same child as a fuzz case (the family's modules imported here first)."""
    import importlib

    path = os.path.abspath(path)
    fam = family_for(path)
    for mod in PRELOAD.get(fam, []) + COMMON:
        importlib.import_module(mod)
    case_dir = tempfile.mkdtemp(prefix="tensorbridge-replay-")
    req = {"id": 0, "path": path, "dir": case_dir, "timeout": timeout, "mem_mb": mem_mb, "trust": trust}
    res = run_one(req, _status_kb("VmData"), _status_kb("VmRSS"))
    res["log"] = Path(case_dir, "log.txt").read_text(errors="replace")[-3000:]
    shutil.rmtree(case_dir, ignore_errors=True)
    return res


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "serve":
        return serve(argv[2])
    if len(argv) >= 3 and argv[1] == "replay":
        for k, v in server_env().items():
            os.environ.setdefault(k, v)
        res = replay(argv[2], trust="--trust" in argv)
        print(json.dumps(res, indent=1))
        return 0 if res["outcome"] in ("ok", "clean") else 1
    print("usage: python -m tests.security.harness serve FAMILY | replay FILE [--trust]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)
