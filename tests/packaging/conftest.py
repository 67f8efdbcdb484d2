"""A temporary XDG home for the desktop-integration tests: the real xdg tools write only there."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
XDG_TOOLS = ("xdg-mime", "xdg-desktop-menu", "xdg-icon-resource", "update-mime-database", "desktop-file-validate")


@pytest.fixture
def xdg_home(tmp_path):
    missing = [t for t in XDG_TOOLS if shutil.which(t) is None]
    if missing:  # ./dev setup installs them (xdg-utils desktop-file-utils shared-mime-info)
        pytest.fail(f"missing system tools {missing}: run ./dev setup as root, or apt install them")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "DESKTOP_SESSION", "KDE_", "GNOME_", "DBUS_SESSION"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               XDG_STATE_HOME=str(home / "state"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_DATA_DIRS="/usr/local/share:/usr/share", XDG_CONFIG_DIRS="/etc/xdg",
               TENSORBRIDGE_NO_WARM_WORKERS="1", TENSORBRIDGE_LOG_DIR=str(home / "logs"))
    yield home, env
    stale = socket_path(env)  # a window ended by SIGTERM leaves its socket file
    if os.path.exists(stale):
        os.unlink(stale)


def socket_path(env) -> str:
    """Where the single-instance socket of a window started with ``env`` lives (Qt: the temp folder)."""
    code = ("import os, tempfile; from app.single_instance import server_name; "
            "print(os.path.join(tempfile.gettempdir(), server_name()))")
    return subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def tensorbridge(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=str(ROOT), env=env, capture_output=True,
                          text=True, timeout=timeout)


def wait_for_log(log: Path, lines: list[str], proc: subprocess.Popen | None = None, timeout=90) -> str:
    """Wait until the window's log has every line in ``lines``; returns the log."""
    end = time.monotonic() + timeout
    text = ""
    while time.monotonic() < end:
        text = log.read_text() if log.exists() else ""
        if all(s in text for s in lines):
            return text
        if proc is not None and proc.poll() is not None and proc.returncode != 0:
            break
        time.sleep(0.2)
    raise AssertionError(f"log {log} lacks {[s for s in lines if s not in text]}:\n{text[-3000:]}")


def window_pids(log: Path) -> set[int]:
    """The processes that wrote 'window started' to the log (its records carry the pid)."""
    out = set()
    for line in (log.read_text() if log.exists() else "").splitlines():
        if line.endswith("window started"):
            out.add(int(line.split()[2]))
    return out


def end_windows(log: Path) -> None:
    import psutil

    for pid in window_pids(log):
        try:
            p = psutil.Process(pid)
            p.terminate()
            p.wait(15)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            p.kill()
