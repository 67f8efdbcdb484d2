"""A ``.pt2`` never runs code from the file on compare or convert unless trusted.

Real archives are made with ``torch.export.save``; each malicious variant rewrites one archive member the
way an attacker would (pickled sample inputs, a pickled weight, a script-object constant, a sympify
payload, guards code, an argument name written into generated code, a call of ``torch.os.system``).
Every payload writes a marker file when it runs; the untrusted runs go through the real CLI (worker
processes) and the marker must never appear, while the trusted controls prove the payloads are live.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from converters.errors import CorruptFile, TrustRequired
from converters.safety.pt2 import check_pt2, check_sym_expr, load_pt2_safely

ROOT = Path(__file__).resolve().parents[2]
TB = [sys.executable, "-m", "app"]


def run_cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(TB + [str(a) for a in args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def one_line_error(proc, path) -> str:
    """The error line (convert prints progress lines on stderr before it)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.strip().splitlines() if "error:" in ln]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0]), proc.stderr
    assert str(path) in errors[0], errors[0]
    return errors[0]


class _Payload:
    """Unpickling this runs ``code``."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def _touch(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


def _rewrite(src: Path, dst: Path, edit) -> None:
    """Copy the archive; ``edit(name, data)`` returns new bytes, or None to keep them; extra members
    come from ``edit(None, None)`` as {name: bytes}."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        root = zin.infolist()[0].filename.split("/", 1)[0]
        for info in zin.infolist():
            data = zin.read(info.filename)
            new = edit(info.filename[len(root) + 1:], data)
            zout.writestr(info, data if new is None else new)
        for name, data in (edit(None, None) or {}).items():
            zout.writestr(f"{root}/{name}", data)


def _edit_json(member: str, change):
    def edit(name, data):
        if name == member:
            doc = json.loads(data)
            change(doc)
            return json.dumps(doc).encode()
        return None
    return edit


@pytest.fixture(scope="module")
def pt2(tmp_path_factory):
    """(folder, plain .pt2 with a dynamic batch, marker path, {payload name: malicious .pt2})."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 4)
            self.register_buffer("scale", torch.full((4,), 2.0))

        def forward(self, x):
            return torch.relu(self.fc(x)) * self.scale

    d = tmp_path_factory.mktemp("pt2")
    plain = d / "plain.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(Net().eval(), (torch.randn(3, 6),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, str(plain))
    marker = d / "MARKER"
    evil = {}

    # sample inputs: torch.load(weights_only=True) fails, then it retries with weights_only=False
    evil["sample_inputs"] = d / "evil_sample_inputs.pt2"
    sample = pickle.dumps(_Payload(_touch(marker)), protocol=2)
    _rewrite(plain, evil["sample_inputs"],
             lambda n, b: sample if n == "data/sample_inputs/model.pt" else None)

    # a weight whose payload config says use_pickle: torch.load(weights_only=False)
    evil["pickled_weight"] = d / "evil_pickled_weight.pt2"

    def pickled_weight(name, data):
        if name is None:
            return {"data/weights/weight_evil": pickle.dumps(_Payload(_touch(marker)), protocol=2)}
        if name == "data/weights/model_weights_config.json":
            doc = json.loads(data)
            doc["config"]["fc.weight"].update(path_name="weight_evil", use_pickle=True)
            return json.dumps(doc).encode()
        return None
    _rewrite(plain, evil["pickled_weight"], pickled_weight)

    # a script-object constant (torch._C._pickle_load_obj) and an opaque one (pickle.loads)
    for kind in ("custom_obj", "opaque_obj"):
        evil[kind] = d / f"evil_{kind}.pt2"

        def constant(name, data, kind=kind):
            if name is None:
                return {f"data/constants/{kind}_0": pickle.dumps(_Payload(_touch(marker)), protocol=2)}
            if name == "data/constants/model_constants_config.json":
                doc = json.loads(data)
                doc["config"]["evil"] = {"path_name": f"{kind}_0", "is_param": False, "use_pickle": True,
                                         "tensor_meta": None}
                return json.dumps(doc).encode()
            return None
        _rewrite(plain, evil[kind], constant)

    # a symbolic shape that sympify would evaluate
    evil["sym_shape"] = d / "evil_sym_shape.pt2"
    sym_payload = f"{_touch(marker)} or Symbol('s77', positive=True, integer=True)"

    def sym_shape(name, data):
        if name == "models/model.json":
            text = data.decode()
            assert "Symbol('s77', positive=True, integer=True)" in text
            return text.replace("Symbol('s77', positive=True, integer=True)",
                                sym_payload.replace("'", "\\u0027")).encode()
        return None
    _rewrite(plain, evil["sym_shape"], sym_shape)

    # a range constraint keyed by an expression
    evil["range_constraint"] = d / "evil_range_constraint.pt2"
    _rewrite(plain, evil["range_constraint"], _edit_json(
        "models/model.json",
        lambda doc: doc["range_constraints"].update({_touch(marker): {"min_val": 1, "max_val": 8}})))

    # guards code that ep.module() exec's
    evil["guards_code"] = d / "evil_guards_code.pt2"
    _rewrite(plain, evil["guards_code"], _edit_json(
        "models/model.json", lambda doc: doc.update(guards_code=[f"{_touch(marker)} is None"])))

    # an argument name written into the generated forward (torch 2.13 also writes it where a default
    # value is a syntax error, so this one is refused but not live; the check is defence in depth)
    evil["arg_name"] = d / "evil_arg_name.pt2"

    def arg_name(doc):
        doc["graph_module"]["module_call_graph"][0]["signature"]["forward_arg_names"] = \
            [f"x, _z={_touch(marker)}"]
    _rewrite(plain, evil["arg_name"], _edit_json("models/model.json", arg_name))

    # a graph node calling torch.os.system (resolved by getattr from the torch module)
    evil["call_target"] = d / "evil_call_target.pt2"

    def call_target(doc):
        node = next(n for n in doc["graph_module"]["graph"]["nodes"] if n["target"].endswith("relu.default"))
        node["target"] = "torch.os.system"
    _rewrite(plain, evil["call_target"], _edit_json("models/model.json", call_target))
    return d, plain, marker, evil


EVIL = ["sample_inputs", "pickled_weight", "custom_obj", "opaque_obj", "sym_shape", "range_constraint",
        "guards_code", "arg_name", "call_target"]
# what the safe path makes inert rather than refusing
DEFUSED = {"sample_inputs", "guards_code"}


def test_plain_pt2_loads_safely_like_torch_export_load(pt2):
    import torch

    _d, plain, _m, _e = pt2
    check_pt2(str(plain), trust=False)
    check_pt2(str(plain), trust=False, loader="torch")
    safe, ref = load_pt2_safely(str(plain), trust=False), torch.export.load(str(plain))
    assert str(safe.graph) == str(ref.graph)
    assert safe.range_constraints == ref.range_constraints
    assert set(safe.state_dict) == set(ref.state_dict) and set(safe.constants) == set(ref.constants)
    assert safe.example_inputs is None and ref.example_inputs is not None
    x = torch.randn(5, 6)
    assert torch.equal(safe.module()(x), ref.module()(x))


def test_plain_pt2_compares_and_converts(pt2, tmp_path):
    _d, plain, _m, _e = pt2
    proc = run_cli("compare", plain, plain, "--json")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "plain.onnx"
    proc = run_cli("convert", plain, "--to", "onnx", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()


@pytest.mark.parametrize("payload", EVIL)
def test_payload_never_runs_on_compare_or_convert(pt2, payload, tmp_path):
    d, plain, marker, evil = pt2
    path = evil[payload]
    marker.unlink(missing_ok=True)
    compared = run_cli("compare", path, plain)
    out = tmp_path / "evil.onnx"
    converted = run_cli("convert", path, "--to", "onnx", "-o", out)
    assert not marker.exists(), f"{payload}: code from the file ran"
    if payload in DEFUSED:
        # the safe loader skips what would run: the model itself is ordinary
        assert compared.returncode == 0, compared.stderr
        assert converted.returncode == 0, converted.stderr
        with pytest.raises(TrustRequired):
            check_pt2(str(path), trust=False, loader="torch")
    else:
        for proc in (compared, converted):
            err = one_line_error(proc, path)
            assert "--trust" in err, err
        with pytest.raises(TrustRequired):
            check_pt2(str(path), trust=False)
        assert not out.exists()
    assert not marker.exists()


@pytest.mark.parametrize("payload", ["sample_inputs", "pickled_weight", "sym_shape", "guards_code"])
def test_payloads_are_live_with_trust(pt2, payload):
    """The control: with --trust torch.export.load runs each of these (so the tests above prove something)."""
    _d, plain, marker, evil = pt2
    marker.unlink(missing_ok=True)
    run_cli("compare", evil[payload], plain, "--trust")
    assert marker.exists(), f"{payload}: the payload did not run even with trust; the test proves nothing"
    marker.unlink()


def test_messages_name_what_would_run(pt2):
    _d, _plain, _m, evil = pt2
    cases = {
        "pickled_weight": "weight 'fc.weight' is stored as a pickle",
        "custom_obj": "script object",
        "opaque_obj": "opaque object",
        "sym_shape": "is outside the arithmetic torch.export writes",
        "range_constraint": "is outside the arithmetic torch.export writes",
        "arg_name": "is not an identifier",
        "call_target": "torch.os.system",
    }
    for payload, words in cases.items():
        with pytest.raises(TrustRequired) as info:
            check_pt2(str(evil[payload]), trust=False)
        assert words in info.value.message and str(evil[payload]) in info.value.message
    with pytest.raises(TrustRequired, match="sample inputs with code allowed"):
        check_pt2(str(evil["sample_inputs"]), trust=False, loader="torch")
    with pytest.raises(TrustRequired, match=r"guard code .*\(guards_code\)"):
        check_pt2(str(evil["guards_code"]), trust=False, loader="torch")
    for payload in EVIL:  # trust turns every check off
        check_pt2(str(evil[payload]), trust=True)


def test_archive_tricks_refused(pt2, tmp_path):
    _d, plain, _m, _e = pt2
    # two members whose names differ only in case: miniz (torch) and zipfile could pick different ones
    dup = tmp_path / "dup.pt2"
    _rewrite(plain, dup, lambda n, b: {"models/MODEL.json": b"{}"} if n is None else None)
    with pytest.raises(CorruptFile, match="two members"):
        check_pt2(str(dup), trust=False)
    # a parameter name with a quote would be written into getattr(self, "...") in generated code
    quoted = tmp_path / "quoted.pt2"
    _rewrite(plain, quoted, lambda n, b: b.replace(b'"fc.weight"', b'"fc.w\\"eight"')
             if n in ("models/model.json", "data/weights/model_weights_config.json") else None)
    with pytest.raises(TrustRequired, match="quotes"):
        check_pt2(str(quoted), trust=False)
    # a file-reading operator in the graph
    from_file = tmp_path / "from_file.pt2"

    def use_from_file(doc):
        node = next(n for n in doc["graph_module"]["graph"]["nodes"] if n["target"].endswith("relu.default"))
        node["target"] = "torch.ops.aten.from_file.default"
    _rewrite(plain, from_file, _edit_json("models/model.json", use_from_file))
    with pytest.raises(TrustRequired, match="from_file"):
        check_pt2(str(from_file), trust=False)


@pytest.mark.parametrize("expr", [
    "s77", "Symbol('s77', positive=True, integer=True)", "2*s0 + 1", "Mul(Integer(2), Symbol('s0'))",
    "FloorDiv(s0, 2)", "Max(1, s1) - Min(s2, 4)", "Mod(s0, 8)", "s0**2", "CeilToInt(IntTrueDiv(s0, 3))",
    "Eq(s0, 2)", "s0 >= 2", "PowByNatural(s0, 3)", "u0", "-oo", "int_oo", "Float('1.5', precision=53)",
    "(s0 + 1) // 2 % 3", "Rational(1, 2)*s0",
    # what torch.export writes for a data-dependent size (onnx2torch's Reshape of a computed shape)
    "Piecewise(ExprCondPair(Integer(1), Equality(Symbol('u0', integer=True), Integer(1))), "
    "ExprCondPair(Integer(0), true))",
])
def test_shape_arithmetic_is_accepted(expr):
    assert check_sym_expr(expr) is None


@pytest.mark.parametrize("expr", [
    "__import__('os').system('true')", "s0.__class__", "eval('1')", "lambda: 1", "[s0]", "s0[0]",
    "Symbol('__import__')", "Symbol('s0', **{})", "9**9**9**9", "Pow(Integer(2), Integer(10000000000))",
    "PowByNatural(2, 99999999999)", "'s0'", "f(s0)", "S.true", "Integer(1).func", "s0 if s0 else 1",
    "(" * 300 + "s0" + ")" * 300, "Float('nan; x')",
])
def test_anything_else_is_refused(expr):
    assert check_sym_expr(expr) is not None


def test_transformers_export_with_dynamic_length_loads_safely(tmp_path):
    """A real transformers model (GPT-2 from a tiny config, offline) exported with a dynamic sequence
    length: its shape expressions (Min, Mul of symbols) pass the grammar and the safe load computes
    exactly what torch.export.load's program does."""
    import torch
    transformers = pytest.importorskip("transformers")

    cfg = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                  use_cache=False)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 100, (2, 8))
    seq = torch.export.Dim("seq", min=2, max=32)
    ep = torch.export.export(model, (ids,), dynamic_shapes=({1: seq},), strict=False)
    path = tmp_path / "gpt2.pt2"
    torch.export.save(ep, str(path))
    check_pt2(str(path), trust=False, loader="torch")
    safe, ref = load_pt2_safely(str(path), trust=False), torch.export.load(str(path))
    assert safe.range_constraints == ref.range_constraints and len(safe.range_constraints) == 1
    other = torch.randint(0, 100, (2, 13))
    for x in (ids, other):
        assert torch.equal(safe.module()(x)[0], ref.module()(x)[0])
