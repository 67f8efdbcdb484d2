"""Worker-process jobs: results, progress, errors, crashes and cancel, with real processes."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from converters.errors import JobCancelled
from converters.jobs import Job, JobFailed, run_job

T = "tests.jobs_tasks:"


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
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
            # a zombie counts as gone: it has exited and only waits for its parent (init) to reap it
            with open(f"/proc/{child}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    break
        except (ProcessLookupError, FileNotFoundError):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the worker's child process survived cancel")


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
