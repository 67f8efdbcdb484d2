"""What ``torch.export.load`` would run from a ``.pt2``, checked from the archive's files; and a loader that
builds the same ExportedProgram without reaching any of it.

``torch.export.load`` (torch 2.13) can run code stored in the file through:

* the sample inputs (``data/sample_inputs/<model>.pt``): ``torch.load`` falls back to ``weights_only=False``;
* weights/constants whose payload config says ``use_pickle`` (``torch.load(weights_only=False)``), script
  objects (``torch._C._pickle_load_obj``) and opaque objects (``pickle.loads``); a legacy
  ``data/weights/<model>.pt`` pickle;
* symbolic size expressions (``expr_str`` anywhere in the graph), which go to ``sympy.sympify`` (an eval);
* ``guards_code``, exec'd by ``ep.module()``; also the guards it derives from the sample inputs;
* names that reach FX's generated Python source unescaped (``forward_arg_names``, parameter/buffer
  FQNs inside ``getattr(self, "…")``, subgraph names);
* call targets resolved by ``getattr`` from ``torch``/``operator``/``math`` (``torch.os.system`` would be a
  callable graph node), and higher-order ops that run compiled or Python code;
* AOTInductor members (``data/aotinductor/``): a shared library that ``load_pt2`` loads.

:func:`check_pt2` refuses (``TrustRequired``) what :func:`load_pt2_safely` cannot make inert, without
importing torch. :func:`load_pt2_safely` then deserialises the program with torch's own lower-level
deserialiser from a checked copy of the JSON: no sample inputs (so no derived guards either), no
``guards_code``, only raw (non-pickled) weights, no AOTInductor. Runners check input shapes themselves.
With ``trust`` it is plain ``torch.export.load``.

Why one module of this size: the check and the loader must agree exactly on what is read (the same
member lookup, the same JSON, the same refusals), so they live side by side; splitting them would let one
drift from the other.
"""
from __future__ import annotations

import ast
import io
import json
import keyword
import pickletools
import re
import zipfile
from typing import Any

from ..errors import CorruptFile, ResourceLimit, TrustRequired

__all__ = ["check_pt2", "load_pt2_safely", "check_sym_expr", "keyword_inputs"]

_TRUST_HINT = "open it only if you trust its source (--trust)"
_MAX_JSON_BYTES = 1 << 30          # declared size of one JSON member
_MAX_EXPR_CHARS = 20000
_MAX_EXPR_NODES = 4000

# --------------------------------------------------------------------------------------------------
# archive members, located the way torch's PyTorchFileReader (miniz) does
# --------------------------------------------------------------------------------------------------


class _Archive:
    """Members under the archive root, keyed case-insensitively (miniz's lookup is case-insensitive)."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise CorruptFile(f"{path}: damaged or truncated .pt2 archive ({exc}); re-save or re-download "
                              f"it") from None
        infos = self.zip.infolist()
        if not infos:
            raise CorruptFile(f"{path}: an empty ZIP archive, not a torch.export .pt2")
        # PyTorchFileReader takes the root folder from the first entry and prefixes it to every lookup
        self.root = infos[0].filename.split("/", 1)[0]
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            key = info.filename.lower()
            if key in self.members:
                raise CorruptFile(f"{path}: the archive holds two members named {info.filename!r} (up to "
                                  f"case); torch and this check could read different ones — re-save it")
            self.members[key] = info
        self.names = [i.filename[len(self.root) + 1:] for i in infos
                      if i.filename.startswith(self.root + "/")]

    def close(self) -> None:
        self.zip.close()

    def info(self, name: str) -> zipfile.ZipInfo | None:
        return self.members.get(f"{self.root}/{name}".lower())

    def has(self, name: str) -> bool:
        return self.info(name) is not None

    def read(self, name: str, limit: int = _MAX_JSON_BYTES) -> bytes | None:
        info = self.info(name)
        if info is None:
            return None
        if info.file_size > limit:
            raise ResourceLimit(f"{self.path}: member {name} declares {info.file_size} bytes, more than "
                                f"the {limit} bytes allowed for it; the file is not an ordinary .pt2")
        try:
            with self.zip.open(info) as f:  # the declared size only: read(n) reserves n bytes up front
                data = f.read(info.file_size)
                extra = f.read(1)
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
            raise CorruptFile(f"{self.path}: cannot read {name} ({exc}); the file may be damaged") from None
        if extra:
            raise ResourceLimit(f"{self.path}: member {name} is larger than it declares; the file is not "
                                f"an ordinary .pt2")
        return data

    def json(self, name: str):
        data = self.read(name)
        if data is None:
            return None
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise CorruptFile(f"{self.path}: cannot parse {name} ({exc}); the file may be damaged") from None


# --------------------------------------------------------------------------------------------------
# symbolic expressions: a strict subset of what torch.export writes, checked before sympify sees it
# --------------------------------------------------------------------------------------------------

_SYMBOL_NAME = re.compile(r"(s|u|zf|zuf|tmp|ps|i|r0_|r1_|idx|x|y|z|indirect|view|h|d|c|q)\d{1,9}")
_SYMPY_FUNCS = {
    # sympy classes as str()/srepr() write them
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Max", "Min", "Abs", "Mod",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan",
    "LessThan", "GreaterThan", "And", "Or", "Not", "Xor", "floor", "ceiling", "sqrt",
    # conditional sizes of data-dependent ops (e.g. ``Piecewise(ExprCondPair(1, Eq(u0, 1)), …)``)
    "Piecewise", "ExprCondPair", "ITE",
    # torch.utils._sympy.functions, the locals torch's deserialiser gives sympify
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal",
    "ToFloat", "Identity",
}
_SYMPY_CONSTANTS = {"oo", "zoo", "nan", "int_oo", "true", "false"}
_SYMBOL_ASSUMPTIONS = {"integer", "positive", "nonnegative", "negative", "nonpositive", "real", "finite",
                       "zero", "nonzero", "commutative", "extended_real", "extended_positive",
                       "extended_nonnegative", "rational", "even", "odd"}
_POWERS = {"Pow", "PowByNatural", "FloatPow", "LShift", "RShift"}
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift,
           ast.BitAnd, ast.BitOr)
_UNARY = (ast.USub, ast.UAdd, ast.Not, ast.Invert)
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d{1,4})?")
_MAX_INT = 1 << 64
_MAX_EXPONENT = 64


def _int_literal(node: ast.AST) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _int_literal(node.operand)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Integer" \
            and len(node.args) == 1:
        return _int_literal(node.args[0])
    return None


def _symbolic(node: ast.AST) -> bool:
    """Whether the expression has a free symbol (sympy leaves such a power unevaluated)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id not in _SYMPY_CONSTANTS and sub.id not in _SYMPY_FUNCS:
            return True
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "Symbol":
            return True
    return False


def _huge_power(base: ast.AST, exponent: ast.AST) -> bool:
    """A power sympy would compute eagerly and that could exhaust time or memory: a constant exponent
    must be an integer literal up to 64, and a constant base under it an integer literal (no towers)."""
    if _symbolic(exponent):
        return False
    e = _int_literal(exponent)
    if e is None or abs(e) > _MAX_EXPONENT:
        return True
    return not _symbolic(base) and _int_literal(base) is None


def check_sym_expr(expr: str) -> str | None:
    """None if ``expr`` is plain shape arithmetic (what ``torch.export`` writes), else why it is not."""
    if not isinstance(expr, str):
        return "not a string"
    if len(expr) > _MAX_EXPR_CHARS:
        return f"longer than {_MAX_EXPR_CHARS} characters"
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "not an arithmetic expression"
    count = 0

    def bad(node: ast.AST) -> str | None:
        nonlocal count
        count += 1
        if count > _MAX_EXPR_NODES:
            return "too large"
        if isinstance(node, ast.Constant):
            v = node.value
            if type(v) is bool or type(v) is float:
                return None
            if type(v) is int:
                return None if abs(v) <= _MAX_INT else "an integer too large for a size"
            return f"a {type(v).__name__} literal"
        if isinstance(node, ast.Name):
            if node.id in _SYMPY_CONSTANTS or _SYMBOL_NAME.fullmatch(node.id):
                return None
            return f"the name {node.id!r}"
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _BINOPS):
                return f"the operator {type(node.op).__name__}"
            if isinstance(node.op, (ast.Pow, ast.LShift, ast.RShift)) and _huge_power(node.left, node.right):
                return "a power too large to compute"
            return bad(node.left) or bad(node.right)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _UNARY):
                return f"the operator {type(node.op).__name__}"
            return bad(node.operand)
        if isinstance(node, ast.Compare):
            if not all(isinstance(o, _COMPARE) for o in node.ops):
                return "a comparison other than == != < <= > >="
            for sub in [node.left, *node.comparators]:
                if (why := bad(sub)):
                    return why
            return None
        if isinstance(node, ast.BoolOp):
            for sub in node.values:
                if (why := bad(sub)):
                    return why
            return None
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _SYMPY_FUNCS:
                return f"a call of {ast.unparse(node.func)!r}"
            name = node.func.id
            if any(isinstance(a, ast.Starred) for a in node.args):
                return "a starred argument"
            if name == "Symbol":
                if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant) \
                        or not isinstance(node.args[0].value, str) \
                        or not _SYMBOL_NAME.fullmatch(node.args[0].value):
                    return "a Symbol with a name other than a size symbol (s0, u1, …)"
                for kw in node.keywords:
                    if kw.arg not in _SYMBOL_ASSUMPTIONS or not isinstance(kw.value, ast.Constant) \
                            or type(kw.value.value) is not bool:
                        return f"a Symbol assumption {kw.arg!r}"
                return None
            if name == "Float":
                if len(node.args) == 1 and isinstance(node.args[0], ast.Constant) \
                        and isinstance(node.args[0].value, str):
                    if not _NUMBER.fullmatch(node.args[0].value):
                        return "a Float of something other than a number"
                    args: list[ast.AST] = []
                else:
                    args = list(node.args)
                for kw in node.keywords:
                    if kw.arg not in ("precision", "dps") or _int_literal(kw.value) is None:
                        return f"a Float option {kw.arg!r}"
                return next((w for a in args if (w := bad(a))), None)
            if node.keywords:
                return f"keyword arguments to {name}"
            if name in _POWERS and (len(node.args) != 2 or _huge_power(*node.args)):
                return "a power too large to compute"
            return next((w for a in node.args if (w := bad(a))), None)
        return f"a {type(node).__name__} expression"

    try:
        return bad(tree.body)
    except RecursionError:
        return "nested too deeply"


# --------------------------------------------------------------------------------------------------
# the program JSON
# --------------------------------------------------------------------------------------------------

_SYM_OP_TARGETS = {
    "_operator.add", "_operator.and_", "_operator.eq", "_operator.floordiv", "_operator.ge", "_operator.gt",
    "_operator.le", "_operator.lshift", "_operator.lt", "_operator.mod", "_operator.mul", "_operator.ne",
    "_operator.neg", "_operator.pos", "_operator.pow", "_operator.rshift", "_operator.sub",
    "_operator.truediv", "_operator.getitem", "_operator.or_", "_operator.not_", "_operator.abs",
    "math.trunc", "math.ceil", "math.floor", "math.sqrt",
    "torch._sym_sqrt", "torch.sym_float", "torch.sym_int", "torch.sym_ite", "torch.sym_max",
    "torch.sym_min", "torch.sym_not", "torch.sym_sum",
}
# higher-order ops that only call subgraphs of the same program
_SAFE_HOPS = {
    "cond", "while_loop", "while_loop_stack_output", "map_impl", "scan", "associative_scan",
    "invoke_subgraph", "wrap_with_set_grad_enabled", "wrap_with_autocast", "with_effects",
    "auto_functionalized", "auto_functionalized_v2", "out_dtype", "run_const_graph", "hints_wrapper",
    "flex_attention", "flex_attention_backward", "tag_activation_checkpoint", "wrap_activation_checkpoint",
    "invoke_quant", "invoke_quant_packed", "_export_tracepoint", "wrap", "run_with_rng_state",
    "run_and_save_rng_state", "graphsafe_run_with_rng_state",
}
# operators that touch files
_UNSAFE_OPS = {"aten.from_file", "aten._nnpack_available", "aten.save", "aten.load"}
_OP_TARGET = re.compile(r"torch\.ops\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)(\.[A-Za-z_]\w*)?")
_FQN_PART = re.compile(r"[^\"'\\\x00-\x1f\x7f.]+")


def _target_problem(target: Any) -> str | None:
    if not isinstance(target, str):
        return "a call target that is not a name"
    if target in _SYM_OP_TARGETS:
        return None
    m = _OP_TARGET.fullmatch(target)
    if m:
        ns, op = m.group(1), m.group(2)
        if ns == "higher_order":
            return None if op in _SAFE_HOPS else f"the higher-order op '{op}', which runs code beyond the graph"
        if f"{ns}.{op}" in _UNSAFE_OPS:
            return f"the operator '{ns}.{op}', which reads or writes files"
        return None
    return f"the call target '{target[:120]}', which is not a torch operator"


def _is_fqn(name: Any) -> bool:
    return isinstance(name, str) and 0 < len(name) <= 1000 and all(_FQN_PART.fullmatch(p) for p in name.split("."))


def _is_identifier(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name) and len(name) <= 500


class _Refusal(Exception):
    pass


def _walk(obj: Any, visit, depth: int = 0) -> None:
    if depth > 400:
        raise _Refusal("its program JSON is nested too deeply to be an exported graph")
    if isinstance(obj, dict):
        visit(obj)
        for v in obj.values():
            if isinstance(v, (dict, list)):
                _walk(v, visit, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)):
                _walk(v, visit, depth + 1)


def _check_program(ep: dict) -> None:
    """Raise _Refusal(reason) for anything in the program JSON that could run code when deserialised."""
    if not isinstance(ep, dict):
        raise _Refusal("its program JSON is not an object")

    def visit(d: dict) -> None:
        if "expr_str" in d:
            why = check_sym_expr(d["expr_str"])
            if why:
                raise _Refusal(f"symbolic expression {str(d['expr_str'])[:120]!r} is outside the arithmetic "
                               f"torch.export writes ({why}); torch would pass it to sympify, which evaluates it")
        if "target" in d and "inputs" in d and "outputs" in d:
            why = _target_problem(d["target"])
            if why:
                raise _Refusal(f"its graph calls {why}")
        if "as_graph" in d and isinstance(d["as_graph"], dict):
            if not _is_identifier(d["as_graph"].get("name")):
                raise _Refusal(f"subgraph name {str(d['as_graph'].get('name'))[:80]!r} is not an identifier; "
                               f"torch would write it into generated Python code")
        if "as_operator" in d:
            why = _target_problem(d["as_operator"])
            if why:
                raise _Refusal(f"its graph passes {why}")
        if "as_custom_obj" in d or "custom_obj" in d or d.get("custom_obj_values"):
            raise _Refusal("it holds a script object, which torch would unpickle with code allowed")
        if "forward_arg_names" in d:
            for name in d["forward_arg_names"] or []:
                if not _is_identifier(name):
                    raise _Refusal(f"argument name {str(name)[:80]!r} is not an identifier; torch would "
                                   f"write it into generated Python code")
        for key in ("parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name",
                    "user_input_name"):
            if key in d and d[key] is not None and not _is_fqn(d[key]):
                raise _Refusal(f"{key.replace('_', ' ')} {str(d[key])[:80]!r} has quotes, backslashes or control "
                               f"characters; torch would write it into generated Python code")

    _walk(ep, visit)
    for key in (ep.get("range_constraints") or {}):
        why = check_sym_expr(key)
        if why:
            raise _Refusal(f"symbolic expression {key[:120]!r} is outside the arithmetic torch.export writes "
                           f"({why})")


def _sanitised_program(ep: dict) -> dict:
    """The program without what the safe loader drops: guards code; stack traces lose carriage returns
    (FX writes them into generated code as comments when printing verbosely)."""
    ep = dict(ep)
    ep["guards_code"] = []

    def visit(d: dict) -> None:
        meta = d.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("stack_trace"), str):
            meta["stack_trace"] = meta["stack_trace"].replace("\r", " ")

    _walk(ep, visit)
    for entry in (ep.get("graph_module") or {}).get("module_call_graph") or []:
        sig = entry.get("signature") if isinstance(entry, dict) else None
        if isinstance(sig, dict):
            for key in ("in_spec", "out_spec"):
                if isinstance(sig.get(key), str):
                    sig[key] = plain_treespec(sig[key])
    return ep


def _import_output_types(path: str) -> None:
    """With trust: import the libraries that define the program's input/output classes (transformers'
    ``BaseModelOutput`` …) so that ``torch.export.load``, which only logs the cause when a class is not
    registered, can rebuild them."""
    import importlib
    import zipfile

    from torch.utils import _pytree as pytree

    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if re.search(r"(^|/)models/[^/]+\.json$", n)]
            text = " ".join(z.read(n).decode("utf-8", "replace") for n in names[:4])
    except (OSError, zipfile.BadZipFile, ValueError):
        return
    for t in set(re.findall(r'\\"type\\": \\"([A-Za-z_][\w.]*)\\"', text)):
        if t in pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE or "." not in t:
            continue
        try:
            importlib.import_module(t.rsplit(".", 1)[0])
        except Exception:
            pass


def plain_treespec(spec: str) -> str:
    """A serialised pytree spec with node types this process has not registered (a library's output
    classes, e.g. transformers' ``BaseModelOutput``) replaced by the containers they flatten like: a
    keyed node becomes a ``dict`` with the same keys, an unkeyed one a ``tuple``. The leaves and their
    order stay, so the program computes exactly the same tensors; only the Python type that wraps the
    outputs changes. No module named in the file is imported."""
    from torch.utils import _pytree as pytree

    try:
        protocol, tree = json.loads(spec)
    except (ValueError, TypeError):
        return spec
    known = pytree.SERIALIZED_TYPE_TO_PYTHON_TYPE

    def fix(node) -> None:
        if not isinstance(node, dict):
            return
        t = node.get("type")
        if isinstance(t, str) and t not in known:
            try:
                ctx = json.loads(node.get("context") or "null")
            except ValueError:
                ctx = None
            if isinstance(ctx, list) and all(isinstance(k, str) for k in ctx) \
                    and len(ctx) == len(node.get("children_spec") or []):
                node["type"] = "builtins.dict"
            elif ctx is None:
                node["type"] = "builtins.tuple"
        for child in node.get("children_spec") or []:
            fix(child)

    fix(tree)
    return json.dumps([protocol, tree])


# --------------------------------------------------------------------------------------------------
# pickles torch.export.load would unpickle
# --------------------------------------------------------------------------------------------------

_PLAIN_GLOBAL = re.compile(
    r"torch\._utils\._rebuild_(tensor|tensor_v2|parameter|parameter_with_state)"
    r"|torch\.[A-Za-z]*Storage|torch\.Size|torch\.device|collections\.OrderedDict"
    r"|torch\.(float|int|uint|bfloat|complex)\d*|torch\.(bool|half|double|long|short|cfloat|cdouble)")


def _pickle_globals(data: bytes) -> list[str] | None:
    """Globals a torch.save zip's data.pkl imports; None if it cannot be read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            pkl = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pkl is None:
                return None
            body = z.read(pkl)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None
    found: list[str] = []
    strings: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for op, arg, _ in pickletools.genops(body):
            if op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
                strings.append(None)
            elif op.name == "STACK_GLOBAL":
                mod, name = (strings[-2:] + [None, None])[:2] if len(strings) >= 2 else (None, None)
                found.append(f"{mod}.{name}" if isinstance(mod, str) and isinstance(name, str) else "?")
                strings.append(None)
            elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                strings.append(arg)
            elif op.name == "MEMOIZE":
                memo[len(memo)] = strings[-1] if strings else None
            elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = strings[-1] if strings else None
            elif op.name in ("BINGET", "LONG_BINGET", "GET"):
                strings.append(memo.get(int(arg)))
            elif op.name in ("INST", "OBJ", "EXT1", "EXT2", "EXT4"):
                found.append("?")
            else:
                strings.append(None)
    except Exception:
        return None
    return found


def _plain_pickle(data: bytes) -> bool:
    found = _pickle_globals(data)
    return found is not None and all(_PLAIN_GLOBAL.fullmatch(g) for g in found)


# --------------------------------------------------------------------------------------------------
# check and load
# --------------------------------------------------------------------------------------------------

def _model_name(arc: _Archive) -> str:
    models = [n[len("models/"):-len(".json")] for n in arc.names
              if n.startswith("models/") and n.endswith(".json") and "/" not in n[len("models/"):]]
    if "model" in models:
        return "model"
    if not models:
        if any(k.endswith("serialized_exported_program.json") for k in arc.members):
            raise TrustRequired(f"{arc.path}: a .pt2 in the pre-2.7 torch.export layout, whose weights are "
                                f"pickles that torch would load with code allowed; re-save it with a current "
                                f"torch, or {_TRUST_HINT}")
        raise CorruptFile(f"{arc.path}: a ZIP archive without models/*.json, so not a torch.export .pt2; it may "
                          f"be damaged, or an AOTInductor package (not supported)")
    raise CorruptFile(f"{arc.path}: the archive has no program named 'model' (it has {', '.join(models[:5])}); "
                      f"torch.export.load reads only 'model'")


def _check(path: str, loader: str) -> tuple[_Archive, str, dict]:
    arc = _Archive(path)
    try:
        name = _model_name(arc)

        def refuse(what: str):
            raise TrustRequired(f"{path}: {what}; {_TRUST_HINT}")

        if arc.has(f"data/weights/{name}.pt"):
            refuse("its weights are stored in the legacy pickle layout, which torch would load with code "
                   "allowed")
        if arc.has(f"data/constants/{name}.pt"):
            refuse("its constants are stored in the legacy pickle layout, which torch would load with code "
                   "allowed")
        for cfg_name, kind in ((f"data/weights/{name}_weights_config.json", "weight"),
                               (f"data/constants/{name}_constants_config.json", "constant")):
            cfg = arc.json(cfg_name)
            if cfg is None:
                raise CorruptFile(f"{path}: {cfg_name} is missing; the file is not a complete torch.export "
                                  f".pt2 — re-save it")
            entries = cfg.get("config") if isinstance(cfg, dict) else None
            if not isinstance(entries, dict):
                raise CorruptFile(f"{path}: {cfg_name} has no config table; the file may be damaged")
            for fqn, entry in entries.items():
                if not _is_fqn(fqn):
                    refuse(f"{kind} name {fqn[:80]!r} has quotes, backslashes or control characters, which "
                           f"torch would write into generated Python code")
                if not isinstance(entry, dict):
                    raise CorruptFile(f"{path}: {cfg_name} entry {fqn!r} is not an object; the file may be "
                                      f"damaged")
                pname = str(entry.get("path_name") or "")
                if pname.startswith("custom_obj_"):
                    refuse(f"{kind} '{fqn}' is a script object, which torch would unpickle with code allowed")
                if pname.startswith("opaque_obj_"):
                    refuse(f"{kind} '{fqn}' is an opaque object, which torch would unpickle with code allowed")
                if entry.get("use_pickle"):
                    refuse(f"{kind} '{fqn}' is stored as a pickle, which torch would load with code allowed")
                if entry.get("tensor_meta") is None:
                    raise CorruptFile(f"{path}: {kind} '{fqn}' has no tensor description; the file may be "
                                      f"damaged")
        ep = arc.json(f"models/{name}.json")
        try:
            _check_program(ep)
        except _Refusal as r:
            refuse(str(r))
        if loader == "torch":
            # what only torch.export.load itself would run (the safe loader skips all of it)
            if any(n.startswith("data/aotinductor/") for n in arc.names):
                refuse("it holds AOTInductor native code, which torch would load")
            if ep.get("guards_code"):
                refuse("its graph carries guard code that torch runs when the model is built (guards_code)")
            for n in arc.names:
                if n.startswith("models/") and n.endswith(".json") and n != f"models/{name}.json":
                    try:
                        _check_program(arc.json(n))
                    except _Refusal as r:
                        refuse(f"program {n}: {r}")
            sample = arc.read(f"data/sample_inputs/{name}.pt")
            if sample and not _plain_pickle(sample):
                refuse("loading it would unpickle its sample inputs with code allowed")
        return arc, name, ep
    except BaseException:
        arc.close()
        raise


def check_pt2(path: str, *, trust: bool, loader: str = "safe") -> None:
    """Refuse (``TrustRequired``) a ``.pt2`` whose loading would run code from it; never imports torch.

    ``loader="safe"`` (default) checks what :func:`load_pt2_safely` cannot make inert: pickled or
    script-object weights and constants, legacy pickle layouts, symbolic expressions outside shape
    arithmetic, call targets other than torch operators, names that would be written into generated
    code. ``loader="torch"`` also refuses what only plain ``torch.export.load`` would run: sample inputs
    that are not plain tensors, ``guards_code``, AOTInductor members, other programs in the archive.
    Damaged archives raise ``CorruptFile``; oversized members ``ResourceLimit``. With ``trust`` nothing
    is checked.
    """
    if trust:
        return
    if loader not in ("safe", "torch"):
        raise ValueError(f"loader must be 'safe' or 'torch', not {loader!r}")
    arc, _, _ = _check(path, loader)
    arc.close()


def load_pt2_safely(path: str, *, trust: bool):
    """An ``ExportedProgram`` from ``path``; with ``trust`` plain ``torch.export.load``.

    Without trust: :func:`check_pt2`, then torch's own deserialiser on the checked program JSON with
    ``guards_code`` emptied, raw (non-pickled) weights and constants read by torch's archive reader, and
    no sample inputs (``ep.example_inputs`` is None, so ``ep.module()`` builds no guard function). Nothing
    in the file is unpickled, exec'd, or passed to sympify unchecked; AOTInductor members are ignored.
    """
    import torch

    if trust:
        _import_output_types(path)
        return torch.export.load(path)
    arc, name, ep = _check(path, "safe")
    arc.close()
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass
    from torch.export.pt2_archive._package import (ARCHIVE_VERSION_PATH, ARCHIVE_VERSION_VALUE,
                                                   PT2ArchiveReader, _load_constants, _load_state_dict)

    serialized = _bytes_to_dataclass(schema.ExportedProgram, json.dumps(_sanitised_program(ep)).encode())
    with PT2ArchiveReader(path) as reader:
        version = reader.read_string(ARCHIVE_VERSION_PATH)
        if version != ARCHIVE_VERSION_VALUE:
            raise CorruptFile(f"{path}: archive version {version} is not the one this torch reads "
                              f"({ARCHIVE_VERSION_VALUE}); re-save it with torch {torch.__version__}")
        state_dict = _load_state_dict(reader, name)
        constants = _load_constants(reader, name)
    if not isinstance(state_dict, dict) or not isinstance(constants, dict):
        # a legacy pickle member the check did not see (cannot happen after _check): never unpickle it
        raise TrustRequired(f"{path}: its weights are stored as a pickle; {_TRUST_HINT}")
    return ExportedProgramDeserializer().deserialize(serialized, state_dict, constants, None)


def keyword_inputs(ep) -> list[str]:
    """The names of the inputs an exported program takes by keyword, in its flattened order (after the
    positional ones); [] when it takes every input by position. A program exported with
    ``kwargs={"input_ids": …}`` (T5's encoder-decoder) must be called that way."""
    try:
        spec = ep.call_spec.in_spec
        kids = (spec.children() if hasattr(spec, "children") else spec.children_specs) if spec is not None else []
        kwargs = kids[1] if len(kids) == 2 else None
        return [str(k) for k in (kwargs.context or [])] if kwargs is not None and kwargs.type is dict else []
    except Exception:
        return []
