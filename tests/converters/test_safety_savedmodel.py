"""SavedModels whose loading or signatures would write files are refused without trust (and really write
with it); plain and Keras-exported SavedModels still convert and compare; hostile folders (call fan-out,
FIFO, /dev/zero, oversized graph) give one-line errors or a bounded graph quickly.

Models are built by TensorFlow itself, in a subprocess (``python tests/converters/test_safety_savedmodel.py
OUT``), once per test session."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRUST_HINT = "run it only if you trust its source (--trust)"


# ---- the models (run in a subprocess: this process never imports TensorFlow for them) ---------------------
def _build(out: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    spec = tf.TensorSpec([None, 4], tf.float32, name="x")

    class Plain(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.reshape(tf.range(12, dtype=tf.float32), [4, 3]) / 10.0)

        @tf.function(input_signature=[spec])
        def __call__(self, x):
            return {"y": tf.nn.relu(tf.matmul(x, self.w))}

    m = Plain()
    tf.saved_model.save(m, os.path.join(out, "plain"), signatures=m.__call__)

    sig_marker = os.path.join(out, "signature_ran.marker")

    class SignatureWrites(Plain):
        @tf.function(input_signature=[spec])
        def __call__(self, x):
            tf.io.write_file(sig_marker, tf.strings.as_string(tf.reduce_sum(x)))
            return {"y": tf.nn.relu(tf.matmul(x, self.w))}

    m = SignatureWrites()
    tf.saved_model.save(m, os.path.join(out, "signature_writes"), signatures=m.__call__)

    init_marker = os.path.join(out, "init_ran.marker")

    class Scale(tf.saved_model.experimental.TrackableResource):
        """A resource whose initializer writes a file: tf.saved_model.save puts it in the object graph's
        ``_initialize`` function (run by tf.saved_model.load) and in ``__saved_model_init_op``."""

        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="")

        def _initialize(self):
            tf.io.write_file(init_marker, "initialized")
            tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=1.0)

    class InitWrites(Plain):
        def __init__(self):
            super().__init__()
            self.scale = Scale()

        @tf.function(input_signature=[spec])
        def __call__(self, x):
            s = tf.raw_ops.ReadVariableOp(resource=self.scale.resource_handle, dtype=tf.float32)
            return {"y": tf.nn.relu(tf.matmul(x, self.w)) * s}

    m = InitWrites()
    tf.saved_model.save(m, os.path.join(out, "init_writes"), signatures=m.__call__)

    vocab = os.path.join(out, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("red\ngreen\nblue\n")

    class Vocab(tf.Module):  # a table read from an asset file: a read the guard must allow
        def __init__(self):
            init = tf.lookup.TextFileInitializer(vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                                 tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="word")])
        def __call__(self, word):
            return {"id": self.table.lookup(word)}

    m = Vocab()
    tf.saved_model.save(m, os.path.join(out, "vocab_table"), signatures=m.__call__)

    class ReadsPasswd(Plain):
        @tf.function(input_signature=[spec])
        def __call__(self, x):
            n = tf.cast(tf.strings.length(tf.io.read_file("/etc/passwd")), tf.float32)
            return {"y": tf.matmul(x, self.w) + n}

    m = ReadsPasswd()
    tf.saved_model.save(m, os.path.join(out, "reads_file"), signatures=m.__call__)

    class PrintsToFile(Plain):
        @tf.function(input_signature=[spec])
        def __call__(self, x):
            tf.print(tf.reduce_sum(x), output_stream="file://" + os.path.join(out, "printed.txt"))
            return {"y": tf.matmul(x, self.w)}

    m = PrintsToFile()
    tf.saved_model.save(m, os.path.join(out, "prints_to_file"), signatures=m.__call__)

    class PrintsToStderr(Plain):  # allowed: nothing leaves the process but a log line
        @tf.function(input_signature=[spec])
        def __call__(self, x):
            tf.print(tf.reduce_sum(x))
            return {"y": tf.matmul(x, self.w)}

    m = PrintsToStderr()
    tf.saved_model.save(m, os.path.join(out, "prints_to_stderr"), signatures=m.__call__)

    class PyCallback(Plain):
        @tf.function(input_signature=[spec])
        def __call__(self, x):
            y = tf.py_function(lambda t: t * 2, [x], tf.float32)
            return {"y": tf.matmul(y, self.w)}

    m = PyCallback()
    tf.saved_model.save(m, os.path.join(out, "py_function"), signatures=m.__call__)

    import keras

    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                           keras.layers.Dense(3)])
    km.export(os.path.join(out, "keras_export"), verbose=False)

    # 7 calls per level over 8 levels: 7**8 leaf calls once expanded, from a few tens of KB of file.
    # TensorFlow's own tracing of such nesting is itself exponential (level 8 takes minutes), so it traces
    # two levels and the file is deepened as a hostile writer would: copies of the level-2 FunctionDef,
    # each calling the one below it 7 times.
    fns = [tf.function(lambda x: tf.nn.relu(x * 2.0 + 1.0), input_signature=[spec], autograph=False)]
    for _ in range(2):
        def make(child):
            def level(x):
                acc = child(x)
                for i in range(1, 7):
                    acc = acc + child(x + float(i))
                return acc
            return tf.function(level, input_signature=[spec], autograph=False)
        fns.append(make(fns[-1]))
    fan = tf.Module()
    fan.f = fns[-1]
    fan_dir = os.path.join(out, "fan_out")
    tf.saved_model.save(fan, fan_dir, signatures={"serving_default": fns[-1].get_concrete_function()})
    _deepen(os.path.join(fan_dir, "saved_model.pb"), levels=8)
    with open(os.path.join(out, "built.json"), "w") as f:
        json.dump({"signature_marker": sig_marker, "init_marker": init_marker}, f)


def _deepen(pb: str, levels: int) -> None:
    """Rewrite a SavedModel whose signature calls L2 (7 calls to L1, each 7 calls to L0) so that it calls
    L<levels>, where each added level is L2's body calling the level below."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(pb, "rb") as f:
        sm.ParseFromString(f.read())
    mg = sm.meta_graphs[0]
    lib = {f.signature.name: f for f in mg.graph_def.library.function}

    def calls(fdef):
        return [n for n in fdef.node_def if "f" in n.attr and n.attr["f"].func.name in lib]

    top = {n.name: n for n in mg.graph_def.node}
    out_node = mg.signature_def["serving_default"].outputs["output_0"].name.split(":")[0]
    wrapper = lib[top[out_node].attr["f"].func.name]
    (to_l2,) = calls(wrapper)
    l2 = lib[to_l2.attr["f"].func.name]
    l1_name = calls(l2)[0].attr["f"].func.name
    assert len(calls(l2)) == 7 and len(calls(lib[l1_name])) == 7
    prev = l2.signature.name
    for k in range(3, levels + 1):
        fdef = mg.graph_def.library.function.add()
        fdef.CopyFrom(l2)
        fdef.signature.name = f"{l2.signature.name}_level{k}"
        for n in fdef.node_def:
            if "f" in n.attr and n.attr["f"].func.name == l1_name:
                n.attr["f"].func.name = prev
        prev = fdef.signature.name
    to_l2.attr["f"].func.name = prev
    with open(pb, "wb") as f:
        f.write(sm.SerializeToString())


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("savedmodel_safety"))
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), out], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(os.path.join(out, "built.json")) as f:
        info = json.load(f)
    info["dir"] = out
    return info


def _path(models, name: str) -> str:
    return os.path.join(models["dir"], name)


def _cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


def _error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines, proc.stdout
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr, proc.stderr
    return lines[-1]


def _no_markers(models):
    for key in ("signature_marker", "init_marker"):
        if os.path.exists(models[key]):
            os.remove(models[key])


# ---- refused without trust ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,marker,what", [
    ("signature_writes", "signature_marker", "its function 'serving_default' would write files (WriteFile"),
    ("init_writes", "init_marker", "its initializer (__saved_model_init_op) would write files (WriteFile"),
])
@pytest.mark.parametrize("action", ["compare", "onnx", "tflite"])
def test_file_writing_savedmodel_is_refused(models, tmp_path, name, marker, what, action):
    _no_markers(models)
    src = _path(models, name)
    if action == "compare":
        proc = _cli("compare", src, _path(models, "plain"), "--repeats", "1")
    else:
        proc = _cli("convert", src, "--to", action, "-o", str(tmp_path / f"out.{action}"))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    line = _error_line(proc)
    assert f"{src}: {what}" in line and line.endswith(TRUST_HINT), line
    assert not os.path.exists(models[marker]), "the model's code ran although it was refused"
    assert not list(tmp_path.iterdir())


def test_reading_a_file_by_path_is_refused(models):
    from converters.errors import TrustRequired
    from converters.safety.savedmodel import check_savedmodel

    with pytest.raises(TrustRequired, match=r"would read files by path \(ReadFile in "):
        check_savedmodel(_path(models, "reads_file"), trust=False)
    check_savedmodel(_path(models, "reads_file"), trust=True)


@pytest.mark.parametrize("name,what", [
    ("prints_to_file", r"would write files \(PrintV2 to file://"),
    ("py_function", r"would run Python code \(EagerPyFunc in "),
])
def test_other_outside_effects_are_refused(models, name, what):
    from converters.errors import TrustRequired
    from converters.safety.savedmodel import check_savedmodel

    with pytest.raises(TrustRequired, match=what):
        check_savedmodel(_path(models, name), trust=False)


def test_vocabulary_table_reads_only_its_assets():
    """TF1-style init op: a table filled from a constant path is refused, from a saved asset allowed."""
    from tensorflow.core.protobuf import meta_graph_pb2

    from converters.errors import TrustRequired
    from converters.safety.savedmodel import check_meta_graph

    mg = meta_graph_pb2.MetaGraphDef()
    path = mg.graph_def.node.add(name="path", op="Const")
    path.attr["value"].tensor.dtype = 7  # DT_STRING
    path.attr["value"].tensor.string_val.append(b"/etc/passwd")
    mg.graph_def.node.add(name="table", op="HashTableV2")
    mg.graph_def.node.add(name="init", op="InitializeTableFromTextFileV2", input=["table", "path"])
    mg.collection_def["table_initializer"].node_list.value.append("init")
    with pytest.raises(TrustRequired, match=r"its initializer \(init op\) would read files by path "
                                            r"\(InitializeTableFromTextFileV2 of '/etc/passwd'\)"):
        check_meta_graph(mg, "m")
    mg.asset_file_def.add(filename="vocab.txt").tensor_info.name = "path:0"
    check_meta_graph(mg, "m")


def test_recursive_and_cyclic_calls_stay_call_nodes(models, tmp_path):
    """A function library with a cycle (L2 -> L1 -> L2): the guard and the reader both terminate."""
    from tensorflow.core.protobuf import saved_model_pb2

    from converters.formats import load
    from converters.safety.savedmodel import check_savedmodel

    folder = _copy_of(models, tmp_path, "fan_out")
    pb = os.path.join(folder, "saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    with open(pb, "rb") as f:
        sm.ParseFromString(f.read())
    lib = sm.meta_graphs[0].graph_def.library.function
    names = {f.signature.name for f in lib}
    callers = {f.signature.name: [n.attr["f"].func.name for n in f.node_def
                                  if "f" in n.attr and n.attr["f"].func.name in names] for f in lib}
    l1 = next(n for n, c in callers.items() if c and not callers[c[0]])  # calls the leaf
    l2 = next(n for n, c in callers.items() if c and c[0] == l1)
    for f in lib:
        if f.signature.name == l1:
            for n in f.node_def:
                if "f" in n.attr and n.attr["f"].func.name in names:
                    n.attr["f"].func.name = l2
    with open(pb, "wb") as f:
        f.write(sm.SerializeToString())
    check_savedmodel(folder, trust=False)
    m = load(folder)
    assert any("recursive function call(s)" in w for w in m.warnings), m.warnings
    assert 0 < len(m.graph.nodes) <= 100_000 + 1000


def test_inspect_reads_a_file_writing_savedmodel_without_running_it(models):
    _no_markers(models)
    proc = _cli("inspect", _path(models, "init_writes"), "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    ops = {n["op_type"] for n in json.loads(proc.stdout)["graph"]["nodes"]}
    assert "MatMul" in ops
    assert not os.path.exists(models["init_marker"])


# ---- with trust the code really runs (so the refusals above are live) --------------------------------------
def test_trusted_compare_runs_the_signature_and_the_initializer(models):
    _no_markers(models)
    proc = _cli("compare", _path(models, "signature_writes"), _path(models, "init_writes"), "--trust",
                "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(models["signature_marker"]) and os.path.exists(models["init_marker"])
    _no_markers(models)


def test_trusted_convert_loads_the_model(models, tmp_path):
    _no_markers(models)
    proc = _cli("convert", _path(models, "init_writes"), "--to", "onnx", "-o", str(tmp_path / "m.onnx"),
                "--trust")
    assert os.path.exists(models["init_marker"]), proc.stderr
    _no_markers(models)


# ---- no false refusals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["plain", "keras_export"])
def test_plain_savedmodels_convert_and_compare(models, tmp_path, name):
    src = _path(models, name)
    for to in ("onnx", "tflite"):
        out = str(tmp_path / f"{name}.{to}")
        proc = _cli("convert", src, "--to", to, "-o", out)
        assert proc.returncode == 0, proc.stderr
        cmp = _cli("compare", src, out, "--repeats", "1")
        assert cmp.returncode == 0, (cmp.stdout, cmp.stderr)
        assert "PASS" in cmp.stdout


def test_guard_allows_what_tensorflow_and_keras_write(models, tmp_path):
    from converters.routes.run import convert
    from converters.safety.savedmodel import check_savedmodel

    for name in ("plain", "keras_export", "vocab_table", "prints_to_stderr", "fan_out"):  # vocab: from assets/
        check_savedmodel(_path(models, name), trust=False)
    # onnx2tf's own SavedModels (ONNX -> TF) pass as well
    onnx = str(tmp_path / "k.onnx")
    convert(_path(models, "keras_export"), "onnx", onnx)
    res = convert(onnx, "tf", str(tmp_path / "k.tf"))
    assert os.path.isfile(os.path.join(res["output"], "saved_model.pb")) and res["hops"][-1]["name"] == "savedmodel_from_onnx"
    check_savedmodel(res["output"], trust=False)


# ---- hostile folders --------------------------------------------------------------------------------------
def test_fan_out_calls_open_quickly_with_a_bounded_graph(models):
    code = ("import resource, time, json, sys\n"
            "from converters.formats import load\n"
            "t = time.process_time(); m = load(sys.argv[1]); s = time.process_time() - t\n"
            # VmHWM, not ru_maxrss: the latter carries the parent's peak across exec (the test process's)
            "hwm = next(int(ln.split()[1]) for ln in open('/proc/self/status') if ln.startswith('VmHWM'))\n"
            "print(json.dumps({'s': s, 'nodes': len(m.graph.nodes), 'warnings': m.warnings,\n"
            "                  'rss_mb': hwm / 1024}))\n")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", code, _path(models, "fan_out")], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    from converters.formats.savedmodel_reader import NODE_BUDGET

    assert NODE_BUDGET <= res["nodes"] < NODE_BUDGET + 1000, res
    assert any("shown as single call nodes" in w for w in res["warnings"]), res
    assert res["s"] < 10 and res["rss_mb"] < 1500, res  # CPU seconds: the shared cores may be busy
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = _cli("inspect", _path(models, "fan_out"), timeout=90)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    assert "single call nodes" in proc.stdout
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)  # CLI and its worker
    assert cpu < 15, cpu


def _copy_of(models, tmp_path, name: str) -> str:
    dst = str(tmp_path / name)
    shutil.copytree(_path(models, name), dst)
    return dst


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "huge", "variables_fifo", "link_out"])
def test_hostile_files_are_one_line_errors(models, tmp_path, kind):
    folder = _copy_of(models, tmp_path, "plain")
    pb = os.path.join(folder, "saved_model.pb")
    if kind == "fifo":
        os.remove(pb)
        os.mkfifo(pb)
        expect = f"{pb}: the model graph is a FIFO (named pipe), not a regular file"
    elif kind == "dev_zero":
        os.remove(pb)
        os.symlink("/dev/zero", pb)
        expect = f"{pb}: is a link to /dev/zero, outside the SavedModel folder"
    elif kind == "huge":
        with open(pb, "r+b") as f:
            f.truncate(2 << 30)  # sparse: no disk used
        expect = f"{pb}: is 2.0 GiB, more than the 2 GiB a SavedModel graph can hold"
    elif kind == "variables_fifo":
        idx = os.path.join(folder, "variables", "variables.index")
        os.remove(idx)
        os.mkfifo(idx)
        expect = f"{idx}: a file of variables/ is a FIFO (named pipe), not a regular file"
    else:
        outside = str(tmp_path / "elsewhere.index")
        idx = os.path.join(folder, "variables", "variables.index")
        shutil.move(idx, outside)
        os.symlink(outside, idx)
        expect = f"{idx}: is a link to {outside}, outside the SavedModel folder"
    for args in (("inspect", folder), ("compare", folder, folder, "--repeats", "1")):
        t = time.perf_counter()
        proc = _cli(*args, timeout=60)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        line = _error_line(proc)
        assert expect in line, (args, line)
        assert time.perf_counter() - t < 30


if __name__ == "__main__":
    _build(sys.argv[1])
