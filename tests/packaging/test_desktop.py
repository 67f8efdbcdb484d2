"""tensorbridge --install-desktop / --uninstall-desktop with the real xdg tools in a temporary XDG home,
the MIME definitions, a launch through the desktop entry's Exec line and through xdg-open."""
from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET

from app.desktop import ICON_SIZES, mime_types
from converters.formats import registry

from .conftest import ROOT, end_windows, tensorbridge, wait_for_log

MIME_XML = ROOT / "packaging" / "tensorbridge-mime.xml"
NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
SAMPLE = str(ROOT / "resources" / "samples" / "tiny_cnn.onnx")


def _installed(env) -> None:
    proc = tensorbridge(env, "--install-desktop")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def _query(env, *args) -> str:
    return subprocess.run(["xdg-mime", "query", *args], env=env, capture_output=True, text=True,
                          timeout=60).stdout.strip()


def _files(home) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def test_install_puts_entry_icons_and_types_where_the_specs_say_and_uninstall_removes_them(xdg_home, model_file):
    home, env = xdg_home
    _installed(env)
    data = home / "data"
    entry = data / "applications" / "tensorbridge.desktop"
    # the desktop entry: valid, and its Exec is this installation's launcher with %F
    assert subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True).stdout == ""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str  # type: ignore[assignment,method-assign]
    cfg.read(entry)
    exec_ = shlex.split(cfg["Desktop Entry"]["Exec"])
    assert exec_[-1] == "%F" and os.path.isabs(exec_[0]) and os.access(exec_[0], os.X_OK)
    assert set(cfg["Desktop Entry"]["MimeType"].strip(";").split(";")) == set(mime_types())
    # the icon theme's layout: one PNG per size and the SVG
    for size in ICON_SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "tensorbridge.png").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "tensorbridge.svg").is_file()
    # the MIME package and the database built from it
    assert (data / "mime" / "packages" / "tensorbridge-mime.xml").is_file()
    assert "application/x-tflite" in (data / "mime" / "types").read_text()
    for t in mime_types():
        assert _query(env, "default", t) == "tensorbridge.desktop", t
    # each kind of file gets its type from the database (content rules where extensions are shared)
    torch_m, tf_m = "torch_models", "tf_models"
    expect = {SAMPLE: "application/x-onnx",
              model_file(torch_m, "cnn.pt2").path: "application/x-pytorch-exported-program",
              model_file(torch_m, "cnn_legacy.pth").path: "application/x-pytorch",
              model_file(torch_m, "cnn_lightning.ckpt").path: "application/x-pytorch",
              model_file(torch_m, "cnn_module.pt").path: "application/x-pytorch",
              model_file(torch_m, "cnn.safetensors").path: "application/x-safetensors",
              model_file(tf_m, "cnn.keras").path: "application/x-keras",
              model_file(tf_m, "cnn.h5").path: "application/x-keras-hdf5",
              model_file(tf_m, "plain.h5").path: "application/x-hdf",   # an HDF5 data file is not ours
              model_file(tf_m, "cnn.tflite").path: "application/x-tflite",
              os.path.join(model_file(tf_m, "exported_savedmodel").path, "saved_model.pb"):
                  "application/x-tensorflow-saved-model"}
    got = {p: _query(env, "filetype", p) for p in expect}
    assert got == expect

    proc = tensorbridge(env, "--uninstall-desktop")
    assert proc.returncode == 0, proc.stderr
    left = [f for f in _files(home) if "tensorbridge" in f.lower()
            or "tensorbridge" in (home / f).read_text(errors="replace").lower()]
    assert left == []
    for t in mime_types():
        assert _query(env, "default", t) == "", t
    assert _query(env, "filetype", model_file(tf_m, "cnn.tflite").path) != "application/x-tflite"


def test_install_without_the_xdg_tools_is_one_line_that_says_what_to_install(xdg_home, tmp_path):
    home, env = xdg_home
    bare = tmp_path / "bin"
    bare.mkdir()
    env = dict(env, PATH=str(bare))
    proc = tensorbridge(env, "--install-desktop")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "install xdg-utils" in proc.stderr and "Traceback" not in proc.stderr
    assert not (home / "data" / "applications").exists()


def test_the_mime_xml_is_well_formed_and_maps_every_registered_extension(tmp_path):
    root = ET.parse(MIME_XML).getroot()
    globs = {g.get("pattern"): t.get("type") for t in root.iter(f"{NS}mime-type") for g in t.iter(f"{NS}glob")}
    for ext in registry.extensions():
        if ext in registry.GENERIC_EXTENSIONS:
            continue
        assert (f"*{ext}" if ext.startswith(".") else ext) in globs, ext
    # extensions other programs use too have a content rule beside the glob
    shared = {"*.h5", "*.pt", "*.pth", "*.ckpt"}
    with_magic = {g.get("pattern") for t in root.iter(f"{NS}mime-type") if t.find(f"{NS}magic") is not None
                  for g in t.iter(f"{NS}glob")}
    assert shared <= with_magic
    # the real compiler of the database accepts it without a complaint
    pkgs = tmp_path / "mime" / "packages"
    pkgs.mkdir(parents=True)
    shutil.copy(MIME_XML, pkgs)
    proc = subprocess.run(["update-mime-database", "-V", str(tmp_path / "mime")], capture_output=True, text=True)
    assert proc.returncode == 0 and "error" not in proc.stderr.lower() and "warning" not in proc.stderr.lower(), \
        proc.stderr


def test_a_launch_through_the_desktop_entry_exec_opens_every_file_as_a_tab(xdg_home, model_file):
    home, env = xdg_home
    _installed(env)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(home / "data" / "applications" / "tensorbridge.desktop")
    files = [SAMPLE, model_file("tf_models", "cnn.tflite").path]
    argv = [a for part in shlex.split(cfg["Desktop Entry"]["Exec"]) for a in (files if part == "%F" else [part])]
    env = dict(env, QT_QPA_PLATFORM="offscreen")
    log = home / "logs" / "window.log"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_log(log, [f"opened {f} (" for f in files], proc)
    finally:
        proc.terminate()
        proc.wait(20)


def test_xdg_open_starts_tensorbridge_with_each_model_and_later_ones_join_as_tabs(xdg_home, model_file):
    assert shutil.which("xvfb-run"), "needs Xvfb: ./dev setup installs it"
    home, env = xdg_home
    _installed(env)
    files = [SAMPLE, model_file("torch_models", "cnn.pt2").path, model_file("tf_models", "cnn.keras").path,
             model_file("tf_models", "cnn.tflite").path]
    log = home / "logs" / "window.log"
    env.pop("QT_QPA_PLATFORM", None)  # a real X server (Xvfb), as on a desktop
    script = " && ".join(f"xdg-open {shlex.quote(f)}" for f in files[1:])
    # the first xdg-open starts the window (and waits for it); the others run while it is up and hand over
    first = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "sh", "-c",
                              f"xdg-open {shlex.quote(files[0])} & "
                              f"for i in $(seq 600); do grep -q 'opened ' {shlex.quote(str(log))} 2>/dev/null && break; "
                              f"sleep 0.1; done; {script}; echo handed-over-$?; wait"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        text = wait_for_log(log, [f"opened {f} (" for f in files], first, timeout=180)
        assert text.count("window started") == 1  # one window: the later launches joined it
    finally:
        end_windows(log)
        try:
            out, _ = first.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(first.pid, 9)
            out, _ = first.communicate()
    assert "handed-over-0" in out, out
