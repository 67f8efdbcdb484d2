"""Worker-process jobs: results, progress, errors, crashes and cancel, with real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from converters.errors import JobCancelled
from converters.jobs import Job, JobFailed, run_job

T = "tests.jobs_tasks:"
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"


def _gone(pid: int) -> bool:
    """Whether a process has ended; a zombie counts as gone (it only waits for its parent to reap it)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except (ProcessLookupError, FileNotFoundError):
        return True


def _wait_gone(pids, timeout: float = 5.0) -> list[int]:
    """Wait until every pid is gone; return those still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in pids if not _gone(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _wait_file(path: Path, timeout: float = 30.0, why=lambda: "") -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, why()
        time.sleep(0.05)
    return path.read_text()


@pytest.fixture
def jobs_dir(tmp_path, monkeypatch):
    """A private jobs root, so a test can check that no folder of its jobs is left."""
    d = tmp_path / "jobs"
    d.mkdir()
    monkeypatch.setenv("TENSORBRIDGE_JOBS", str(d))
    monkeypatch.delenv("TENSORBRIDGE_KEEP_JOBS", raising=False)
    return d


def _env(jobs: Path, **extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TENSORBRIDGE_JOBS=str(jobs))
    env.pop("TENSORBRIDGE_KEEP_JOBS", None)
    env.update(extra)
    return env


def test_result_progress_and_log_are_separate():
    job = Job(T + "sleep_task", {"steps": 4}).start()
    events = list(job.events(timeout=60))
    kinds = [e.kind for e in events]
    assert kinds.count("progress") == 4
    assert kinds[-1] == "end"
    result = job.wait(5)
    assert result["slept"] == 4 and result["pid"] != os.getpid()
    log = job.log_path.read_text()
    assert "printed by the task 3" in log          # the task's prints went to the log ...
    assert all("printed by" not in str(e.data) for e in events)  # ... not to the event channel


def test_task_error_is_one_line():
    with pytest.raises(JobFailed) as ei:
        run_job(T + "error_task", {}, timeout=60)
    assert ei.value.kind == "CorruptFile"
    assert ei.value.message == "/some/file.onnx: damaged"


@pytest.mark.parametrize("task,expect", [
    ("segfault_task", "SIGSEGV"),
    ("sys_exit_task", "sys.exit(3)"),
    ("hard_exit_task", "exited with code 7"),
])
def test_dying_worker_becomes_an_error(task, expect):
    with pytest.raises(JobFailed) as ei:
        run_job(T + task, {}, timeout=60)
    assert expect in ei.value.message
    assert "\n" not in ei.value.message


def test_cancel_ends_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    job = Job(T + "spawn_child_task", {"pidfile": str(pidfile)}).start()
    deadline = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline, job.log_tail()
        time.sleep(0.05)
    child = int(pidfile.read_text())
    t0 = time.monotonic()
    job.cancel(grace=1.0)
    with pytest.raises(JobCancelled):
        job.wait(30)
    assert time.monotonic() - t0 < 10
    assert not _wait_gone([child], 10), "the worker's child process survived cancel"


def test_unknown_task():
    with pytest.raises(JobFailed) as ei:
        run_job("no_such_task", {}, timeout=60)
    assert "unknown task" in ei.value.message


def test_warm_pool_runs_jobs_in_prestarted_workers():
    from converters.jobs import WorkerPool

    with WorkerPool(families=("onnx",)) as pool:
        spare = pool._spares["onnx"]
        first_pid = spare.proc.pid
        time.sleep(0.5)  # let it import
        job = pool.start(T + "sleep_task", {"steps": 2}, family="onnx")
        assert job.wait(60)["pid"] == first_pid          # the job ran in the warm process
        assert pool._spares["onnx"].proc.pid != first_pid  # and a new spare is already starting
        job2 = pool.start("load", {"path": str(Path(__file__).resolve().parents[2] / "resources/samples/tiny_cnn.onnx")},
                          family="onnx")
        assert job2.wait(60)["format"] == "onnx"
        last = pool._spares["onnx"].proc
    assert last.wait(10) is not None                      # closing the pool ends the spares


def test_family_of():
    from converters.jobs import family_of

    assert family_of("torch.export") == "torch"
    assert family_of("savedmodel") == "tf"
    assert family_of("onnx") == "onnx"


# ---- workers die with the process that started them ----------------------------------------------
PARENT = textwrap.dedent("""
    import sys, threading, time
    from converters.jobs import Job, WorkerPool

    mode, pidfile = sys.argv[1], sys.argv[2]
    if mode == "spare":  # a warm worker: it imports its framework (here: a slow import), then waits on stdin
        import converters.jobs
        converters.jobs.FAMILY_PRELOAD["slow"] = ["tests.jobs_slow_import"]
        pool = WorkerPool(("slow",))
        print(pool._spares["slow"].proc.pid, flush=True)
    else:
        def start():
            task = "gil_hog_task" if mode == "gil" else "sleep_spawn_task"
            job = Job("tests.jobs_tasks:" + task, {"pidfile": pidfile}).start()
            print(job.proc.pid, flush=True)
            if mode == "thread":  # the spawning thread ends once the worker runs its task
                for ev in job.events():
                    if ev.kind == "progress":
                        break
        if mode == "thread":
            t = threading.Thread(target=start)
            t.start()
            t.join()
        else:
            start()
    time.sleep(120)
""")


@pytest.mark.parametrize("mode", ["main", "thread", "spare", "gil"])
def test_kill_9_of_the_parent_ends_worker_and_grandchild(mode, tmp_path, jobs_dir):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    pidfile = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, str(script), mode, str(pidfile)], cwd=str(ROOT),
                              env=_env(jobs_dir), stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        if mode == "spare":
            pids = [worker]
            time.sleep(0.5)  # killed while it imports
        else:
            pids = [int(x) for x in _wait_file(pidfile).split()]
            assert pids[0] == worker
            time.sleep(0.5)
            # with "thread", the thread that spawned the worker has ended: the worker must not care
            assert not _gone(worker) and not _gone(pids[1])
        t0 = time.monotonic()
        parent.kill()
        parent.wait(10)
        alive = _wait_gone(pids, 5.0)
        assert not alive, f"still running {time.monotonic() - t0:.1f} s after the parent died: {alive}"
    finally:
        parent.kill()
        for p in pids if "pids" in dir() else []:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_programs_a_job_left_running_end_with_it():
    result, job = run_job(T + "leave_child_task", {})
    job.cleanup()
    assert not _wait_gone([result["child"]], 5.0)


def test_job_started_from_a_short_lived_thread_survives_it():
    box = []

    def start():
        job = Job(T + "sleep_task", {"steps": 10, "delay": 0.1}).start()
        box.append(job)
        for ev in job.events(timeout=60):  # the worker runs (and armed its parent-death signal) ...
            if ev.kind == "progress":
                break
    t = threading.Thread(target=start)   # ... then its spawning thread ends
    t.start()
    t.join()
    assert box[0].wait(60)["slept"] == 10
    box[0].cleanup()


# ---- the CLI ends its jobs when it is told to stop -----------------------------------------------
CLI = textwrap.dedent("""
    import sys
    from converters import cli
    from converters.jobs import run_job

    def run(args):
        run_job("tests.jobs_tasks:sleep_spawn_task", {"pidfile": args.pidfile})
        return 0

    cli._load_plugins()
    cli.COMMANDS["slow"] = ("a long task", lambda p: p.add_argument("pidfile"), run)
    sys.exit(cli.main(["slow", sys.argv[1]]))
""")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 2), (signal.SIGHUP, 2), (signal.SIGINT, 130)])
def test_signal_to_the_cli_ends_its_jobs_and_leaves_no_folder(sig, code, tmp_path, jobs_dir):
    script = tmp_path / "cli.py"
    script.write_text(CLI)
    pidfile = tmp_path / "pids"
    cli = subprocess.Popen([sys.executable, str(script), str(pidfile)], cwd=str(ROOT), env=_env(jobs_dir),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in _wait_file(pidfile).split()]
        assert os.listdir(jobs_dir)  # the job's folder exists while it runs
        cli.send_signal(sig)
        out, err = cli.communicate(timeout=10)
        assert cli.returncode == code, err
        assert not _wait_gone(pids, 5.0)
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        want = "cancelled" if sig == signal.SIGINT else f"stopped by {sig.name}; its running jobs were ended"
        assert lines[0] == f"tensorbridge: error: {want}"
        assert os.listdir(jobs_dir) == []
    finally:
        cli.kill()


def test_sigterm_to_tensorbridge_convert(tmp_path, jobs_dir):
    import psutil

    exe = Path(sys.executable).parent / "tensorbridge"
    out = tmp_path / "out.tflite"
    cli = subprocess.Popen([str(exe), "convert", str(SAMPLE), "--to", "tflite", "-o", str(out)], cwd=str(tmp_path),
                           env=_env(jobs_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        me = psutil.Process(cli.pid)
        deadline = time.monotonic() + 30
        tree: list[int] = []
        while not tree:
            assert time.monotonic() < deadline and cli.poll() is None, cli.stderr.read()
            tree = [p.pid for p in me.children(recursive=True)]
            time.sleep(0.05)
        time.sleep(1.0)  # let the worker get going (TensorFlow imports)
        tree = list({*tree, *(p.pid for p in me.children(recursive=True))})
        cli.terminate()
        _, err = cli.communicate(timeout=10)
        assert cli.returncode == 2
        assert err.strip().splitlines()[-1] == "tensorbridge: error: stopped by SIGTERM; its running jobs were ended"
        assert not _wait_gone(tree, 5.0)
        assert os.listdir(jobs_dir) == []
        assert not out.exists()
    finally:
        cli.kill()


# ---- job folders -----------------------------------------------------------------------------------
def test_failed_crashed_and_cancelled_jobs_leave_no_folder(jobs_dir, tmp_path):
    with pytest.raises(JobFailed) as ei:
        run_job(T + "error_task", {}, timeout=60)
    assert ei.value.log_path is None
    with pytest.raises(JobFailed):
        run_job(T + "segfault_task", {}, timeout=60)
    with pytest.raises(JobFailed):
        run_job(T + "sleep_task", {"steps": 100, "delay": 0.1}, timeout=0.5)
    assert os.listdir(jobs_dir) == []
    result, job = run_job(T + "sleep_task", {"steps": 1})
    assert job.job_dir.exists()   # the caller may still read files named by the result ...
    job.cleanup()                 # ... until it says it is done
    assert os.listdir(jobs_dir) == []


def test_keep_jobs_env_keeps_folders(jobs_dir, monkeypatch):
    monkeypatch.setenv("TENSORBRIDGE_KEEP_JOBS", "1")
    with pytest.raises(JobFailed) as ei:
        run_job(T + "error_task", {}, timeout=60)
    assert os.path.exists(ei.value.log_path)
    result, job = run_job(T + "sleep_task", {"steps": 1})
    job.cleanup()
    assert len(os.listdir(jobs_dir)) == 2


def _tb(*args, jobs: Path, timeout=120, **env):
    exe = Path(sys.executable).parent / "tensorbridge"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, cwd=str(ROOT),
                          env=_env(jobs, **env))


def test_cli_leaves_no_folder_and_debug_keeps_the_failed_ones(jobs_dir, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(SAMPLE.read_bytes()[:500])
    ok = _tb("inspect", str(SAMPLE), jobs=jobs_dir)
    assert ok.returncode == 0 and "format:     onnx" in ok.stdout
    bad = _tb("inspect", str(broken), jobs=jobs_dir)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert os.listdir(jobs_dir) == []
    dbg = _tb("--debug", "inspect", str(broken), jobs=jobs_dir)
    assert dbg.returncode == 2
    kept = os.listdir(jobs_dir)
    assert len(kept) == 1
    assert f"the job folder is kept: {jobs_dir / kept[0]}" in dbg.stderr
    assert "--- worker log" in dbg.stderr


def test_stale_folders_of_dead_processes_are_swept(jobs_dir):
    import json

    from converters.jobs.limits import OWNER_FILE, sweep_stale, write_owner

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = time.time() - 2 * 86400
    folders = {}
    for name, pid in (("dead-old", dead.pid), ("mine-old", None), ("dead-new", dead.pid)):
        d = jobs_dir / name
        d.mkdir()
        write_owner(d)
        if pid is not None:
            (d / OWNER_FILE).write_text(json.dumps({"pid": pid, "started": 0.0}))
        folders[name] = d
    for name in ("dead-old", "mine-old"):
        os.utime(folders[name], (old, old))
    assert sweep_stale(jobs_dir) == 1
    assert sorted(os.listdir(jobs_dir)) == ["dead-new", "mine-old"]


# ---- budgets of jobs that open a user's file ---------------------------------------------------------
@pytest.fixture
def as_load_task(monkeypatch):
    """Give test tasks the budget of a task that opens a user's file."""
    from converters.jobs import limits

    def mark(name):
        monkeypatch.setitem(limits.LOAD_TASKS, T + name, "path")
    return mark


def test_load_past_its_time_limit_is_a_resource_limit(as_load_task, monkeypatch, jobs_dir, tmp_path):
    as_load_task("spawn_child_task")
    monkeypatch.setenv("TENSORBRIDGE_LOAD_TIMEOUT", "1.5")
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    with pytest.raises(JobFailed) as ei:
        run_job(T + "spawn_child_task", {"path": "/data/model.onnx", "pidfile": str(pidfile)})
    assert time.monotonic() - t0 < 6
    assert ei.value.kind == "ResourceLimit"
    assert ei.value.message == ("/data/model.onnx: reading it took longer than 1.5 s (the load time limit); if the "
                                "file is genuine, raise it with TENSORBRIDGE_LOAD_TIMEOUT (seconds, 0 for none)")
    assert not _wait_gone([int(pidfile.read_text())], 5.0)  # the whole process group was ended
    assert os.listdir(jobs_dir) == []


def test_conversions_get_no_default_time_limit(monkeypatch):
    from converters.jobs.limits import limits_for

    monkeypatch.setenv("TENSORBRIDGE_LOAD_TIMEOUT", "1")
    assert not limits_for("convert", {"src": "/x.onnx"}) and not limits_for("compare", {})
    lim = limits_for("open", {"path": "/x.onnx"})
    assert lim.timeout == 1 and lim.file == "/x.onnx" and lim.memory


def test_load_past_its_memory_limit_is_a_resource_limit(as_load_task, monkeypatch, jobs_dir):
    as_load_task("alloc_task")
    monkeypatch.setenv("TENSORBRIDGE_LOAD_MEMORY", "300M")
    with pytest.raises(JobFailed) as ei:
        run_job(T + "alloc_task", {"path": "/data/huge.pt", "mb": 2048}, timeout=60)
    assert ei.value.kind == "ResourceLimit"
    assert ei.value.message.startswith("/data/huge.pt: reading it needed more than 300 MiB of memory "
                                       "(the load memory limit); if the file is genuine, raise it with "
                                       "TENSORBRIDGE_LOAD_MEMORY")
    # the same task is fine within its budget
    monkeypatch.setenv("TENSORBRIDGE_LOAD_MEMORY", "1G")
    result, job = run_job(T + "alloc_task", {"path": "/data/huge.pt", "mb": 160}, timeout=60)
    assert result["allocated_mb"] == 160
    job.cleanup()
    assert os.listdir(jobs_dir) == []


def test_memory_of_the_whole_process_group_counts(as_load_task, monkeypatch, jobs_dir):
    # three programs of 150 MiB each: every one is under the per-process limit, together they are over it
    as_load_task("children_alloc_task")
    monkeypatch.setenv("TENSORBRIDGE_LOAD_MEMORY", "300M")
    t0 = time.monotonic()
    with pytest.raises(JobFailed) as ei:
        run_job(T + "children_alloc_task", {"path": "/data/m.onnx", "n": 3, "mb": 150}, timeout=60)
    assert ei.value.kind == "ResourceLimit", ei.value.message
    assert "/data/m.onnx: reading it needed more than 300 MiB" in ei.value.message
    assert time.monotonic() - t0 < 10


def test_cli_load_past_its_time_limit(model_file, jobs_dir):
    # reading a SavedModel imports TensorFlow, which alone takes longer than this limit
    path = model_file("tf_models", "exported_savedmodel").path
    r = _tb("inspect", path, jobs=jobs_dir, TENSORBRIDGE_LOAD_TIMEOUT="0.3")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"tensorbridge: error: {path}: reading it took longer than 0.3 s (the load time limit); if the file is "
        f"genuine, raise it with TENSORBRIDGE_LOAD_TIMEOUT (seconds, 0 for none)"]
    assert os.listdir(jobs_dir) == []


def test_budget_settings_are_parsed_and_bad_ones_are_one_line_errors(monkeypatch):
    from converters.errors import TensorbridgeError
    from converters.jobs.limits import GiB, default_load_memory, limits_for, parse_size

    assert parse_size("6G") == 6 * GiB and parse_size("512M") == 512 << 20 and parse_size("1.5GiB") == 3 * GiB // 2
    assert default_load_memory() <= 8 * GiB
    monkeypatch.setenv("TENSORBRIDGE_LOAD_MEMORY", "0")
    monkeypatch.setenv("TENSORBRIDGE_LOAD_TIMEOUT", "off")
    assert not limits_for("load", {"path": "/x.onnx"})
    monkeypatch.setenv("TENSORBRIDGE_LOAD_MEMORY", "lots")
    with pytest.raises(TensorbridgeError) as ei:
        Job("load", {"path": "/x.onnx"})
    assert ei.value.message == "TENSORBRIDGE_LOAD_MEMORY='lots': give a size such as 6G or 512M (0 for no limit)"
