"""``tensorbridge --install-desktop`` / ``--uninstall-desktop``: the desktop entry, icons and model file
types for the current user, through the standard xdg tools (no Qt here).

Install writes the entry with ``Exec`` pointing at this launcher (the venv's ``bin/tensorbridge``, or the
bundle's executable), checks it with ``desktop-file-validate`` when that is installed, then runs
``xdg-desktop-menu``, ``xdg-icon-resource``, ``xdg-mime install`` and ``xdg-mime default`` (which write
under ``$XDG_DATA_HOME`` and ``$XDG_CONFIG_HOME``) and updates the desktop and MIME databases.
Uninstall removes all of it, including this program's lines in ``mimeapps.list``.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

__all__ = ["install", "uninstall", "launcher", "mime_types", "main", "DesktopError", "DESKTOP_ID"]

DESKTOP_ID = "tensorbridge.desktop"
ICON_SIZES = (16, 32, 48, 64, 128, 256)
_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


class DesktopError(Exception):
    """One line for the user: what failed and what to do."""


def _root() -> str:
    """The folder that holds packaging/ and resources/ (the source tree, or the bundle)."""
    return getattr(sys, "_MEIPASS", None) or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _packaging(name: str) -> str:
    return os.path.join(_root(), "packaging", name)


def _icon(name: str) -> str:
    return os.path.join(_root(), "resources", "icons", name)


def _data_home() -> str:
    return os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")


def _config_home() -> str:
    return os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")


def launcher() -> list[str]:
    """The command that starts this installation of Tensorbridge, as absolute paths."""
    if getattr(sys, "frozen", False):
        return [os.path.abspath(sys.executable)]
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "tensorbridge")
    if os.access(beside, os.X_OK):
        return [beside]
    arg0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(arg0) == "tensorbridge" and os.access(arg0, os.X_OK):
        return [arg0]
    return [os.path.abspath(sys.executable), "-m", "app"]


def mime_types() -> list[str]:
    """The MIME types packaging/tensorbridge-mime.xml defines."""
    tree = ET.parse(_packaging("tensorbridge-mime.xml"))
    return [t.get("type", "") for t in tree.getroot().iter(f"{_NS}mime-type")]


def _desktop_entry() -> str:
    cmd = launcher()
    exec_line = " ".join(_quote_exec(a) for a in cmd)
    out = []
    with open(_packaging("tensorbridge.desktop"), encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line.startswith("Exec="):
                line = f"Exec={exec_line} %F"
            elif line.startswith("TryExec="):
                line = f"TryExec={cmd[0]}"
            out.append(line)
    return "\n".join(out) + "\n"


def _quote_exec(arg: str) -> str:
    # the desktop entry spec: quote arguments with reserved characters; '%' is written '%%'
    arg = arg.replace("%", "%%")
    if any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$") + '"'
    return arg


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DesktopError(f"{name} was not found: install {package} (on Debian and Ubuntu: "
                           f"sudo apt install xdg-utils desktop-file-utils shared-mime-info) and run this again")
    return path


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("XDG_UTILS_DEBUG_LEVEL", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise DesktopError(f"{os.path.basename(cmd[0])} failed ({detail[-1] if detail else f'exit {proc.returncode}'}); "
                           f"nothing else was changed, run this again after fixing it")
    return proc


def install() -> list[str]:
    """Register the entry, icons and types; returns one line per thing done."""
    xdg_menu = _tool("xdg-desktop-menu", "xdg-utils")
    xdg_icon = _tool("xdg-icon-resource", "xdg-utils")
    xdg_mime = _tool("xdg-mime", "xdg-utils")
    done = []
    with tempfile.TemporaryDirectory(prefix="tensorbridge-desktop-") as tmp:
        entry = os.path.join(tmp, DESKTOP_ID)
        with open(entry, "w", encoding="utf-8") as f:
            f.write(_desktop_entry())
        validate = shutil.which("desktop-file-validate")
        if validate:
            _run([validate, entry])
        for size in ICON_SIZES:
            png = _icon("tensorbridge.png" if size == 256 else f"tensorbridge-{size}.png")
            _run([xdg_icon, "install", "--noupdate", "--novendor", "--mode", "user", "--context", "apps",
                  "--size", str(size), png, "tensorbridge"])
        svg_dir = os.path.join(_data_home(), "icons", "hicolor", "scalable", "apps")
        os.makedirs(svg_dir, exist_ok=True)
        shutil.copyfile(_icon("tensorbridge.svg"), os.path.join(svg_dir, "tensorbridge.svg"))
        _run([xdg_icon, "forceupdate", "--mode", "user"], check=False)
        done.append(f"icons in {os.path.join(_data_home(), 'icons', 'hicolor')}")
        _run([xdg_mime, "install", "--mode", "user", "--novendor", _packaging("tensorbridge-mime.xml")])
        done.append(f"file types in {os.path.join(_data_home(), 'mime', 'packages')}")
        _run([xdg_menu, "install", "--mode", "user", "--novendor", entry])
        done.append(f"desktop entry {os.path.join(_data_home(), 'applications', DESKTOP_ID)} "
                    f"(Exec={' '.join(shlex.quote(a) for a in launcher())})")
    types = mime_types()
    _run([xdg_mime, "default", DESKTOP_ID, *types])
    done.append(f"default application for {len(types)} file types in {os.path.join(_config_home(), 'mimeapps.list')}")
    _update_databases()
    return done


def uninstall() -> list[str]:
    """Remove what :func:`install` registered; returns one line per thing done."""
    xdg_menu = _tool("xdg-desktop-menu", "xdg-utils")
    xdg_icon = _tool("xdg-icon-resource", "xdg-utils")
    xdg_mime = _tool("xdg-mime", "xdg-utils")
    apps = os.path.join(_data_home(), "applications")
    _run([xdg_menu, "uninstall", "--mode", "user", "--novendor", os.path.join(apps, DESKTOP_ID)], check=False)
    if os.path.exists(os.path.join(apps, DESKTOP_ID)):
        os.unlink(os.path.join(apps, DESKTOP_ID))
    for size in ICON_SIZES:
        _run([xdg_icon, "uninstall", "--noupdate", "--mode", "user", "--context", "apps", "--size", str(size),
              "tensorbridge"], check=False)
    svg = os.path.join(_data_home(), "icons", "hicolor", "scalable", "apps", "tensorbridge.svg")
    if os.path.exists(svg):
        os.unlink(svg)
    _run([xdg_icon, "forceupdate", "--mode", "user"], check=False)
    _run([xdg_mime, "uninstall", "--mode", "user", "--novendor", _packaging("tensorbridge-mime.xml")], check=False)
    # xdg-mime default writes mimeapps.list; older xdg-utils also the legacy defaults.list
    removed = _drop_associations(os.path.join(_config_home(), "mimeapps.list"))
    removed += _drop_associations(os.path.join(apps, "defaults.list"))
    _update_databases()
    return [f"removed the desktop entry, icons and file types; {removed} default-application lines dropped"]


def _drop_associations(path: str) -> int:
    """Remove this program from a mimeapps.list (every section), keeping everyone else's entries."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    out, dropped = [], 0
    for line in lines:
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            apps = [a for a in value.split(";") if a]
            kept = [a for a in apps if a != DESKTOP_ID]
            if len(kept) != len(apps):
                dropped += 1
                if not kept:
                    continue
                line = f"{key}={';'.join(kept)};"
        out.append(line)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return dropped


def _update_databases() -> None:
    mime = os.path.join(_data_home(), "mime")
    if shutil.which("update-mime-database") and os.path.isdir(mime):
        _run(["update-mime-database", mime], check=False)
    apps = os.path.join(_data_home(), "applications")
    if shutil.which("update-desktop-database") and os.path.isdir(apps):
        _run(["update-desktop-database", apps], check=False)


def main(*, remove: bool = False) -> int:
    try:
        lines = uninstall() if remove else install()
    except (DesktopError, OSError) as exc:
        msg = str(exc) if isinstance(exc, DesktopError) else f"{exc.filename or ''}: {exc.strerror}"
        print(f"tensorbridge: error: {msg}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
