"""One window per session, with real processes under offscreen Qt: a second launch hands its files to
the running window and exits 0; --new-window, --screenshot and CLI commands keep to themselves; a socket
left by a crashed window does not block the next launch."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from .conftest import ROOT, end_windows, socket_path, tensorbridge, wait_for_log, window_pids

SAMPLE = str(ROOT / "resources" / "samples" / "tiny_cnn.onnx")


def _env(xdg_home):
    home, env = xdg_home
    return home, dict(env, QT_QPA_PLATFORM="offscreen")


def _start(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_second_launch_hands_its_files_to_the_running_window_and_exits_0(xdg_home, model_file, tmp_path):
    home, env = _env(xdg_home)
    log = home / "logs" / "window.log"
    tfl = model_file("tf_models", "cnn.tflite").path
    first = _start(env, SAMPLE)
    try:
        wait_for_log(log, [f"opened {SAMPLE} ("], first)
        t0 = time.monotonic()
        # a relative path is resolved where the second launch ran, not where the window runs
        second = subprocess.run([sys.executable, "-m", "app", os.path.basename(tfl)], cwd=os.path.dirname(tfl),
                                env=dict(env, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
        assert second.returncode == 0, second.stderr
        text = wait_for_log(log, [f"opened {tfl} ("], first)
        assert window_pids(log) == {first.pid}, text  # no second window
        print(f"hand-off launch took {took:.2f} s")
        # --screenshot and CLI commands never hand over: they do their own work
        shot = tmp_path / "shot.png"
        proc = tensorbridge(env, "--screenshot", str(shot), tfl)
        assert proc.returncode == 0 and shot.stat().st_size > 10_000, proc.stderr
        proc = tensorbridge(env, "inspect", SAMPLE)
        assert proc.returncode == 0 and "onnx" in proc.stdout.lower(), proc.stderr
        assert window_pids(log) == {first.pid}
        assert first.poll() is None
    finally:
        end_windows(log)
        first.wait(20)


def test_new_window_opts_out_of_the_hand_off(xdg_home):
    home, env = _env(xdg_home)
    log = home / "logs" / "window.log"
    first = _start(env, SAMPLE)
    second = None
    try:
        wait_for_log(log, [f"opened {SAMPLE} ("], first)
        second = _start(env, "--new-window", SAMPLE)
        end = time.monotonic() + 60
        while len(window_pids(log)) < 2 and time.monotonic() < end:
            assert second.poll() is None, second.stderr.read() if second.stderr else ""
            time.sleep(0.2)
        assert window_pids(log) == {first.pid, second.pid}
    finally:
        end_windows(log)
        first.wait(20)
        if second is not None:
            second.wait(20)


def test_a_stale_socket_from_a_crashed_window_does_not_block_the_next_launch(xdg_home, model_file):
    home, env = _env(xdg_home)
    log = home / "logs" / "window.log"
    path = socket_path(env)
    # what a killed window leaves: the socket file, bound once, with nobody listening
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    assert os.path.exists(path)
    first = _start(env, SAMPLE)
    try:
        wait_for_log(log, [f"opened {SAMPLE} ("], first)
        tfl = model_file("tf_models", "cnn.tflite").path
        second = tensorbridge(env, tfl, timeout=60)  # the new window owns the name now
        assert second.returncode == 0, second.stderr
        wait_for_log(log, [f"opened {tfl} ("], first)
        assert window_pids(log) == {first.pid}
    finally:
        end_windows(log)
        first.wait(20)
