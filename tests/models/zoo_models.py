"""Real architectures for the acceptance tier (``benchmarks/zoo.py``, ``tests/acceptance``).

Every model is built offline from the frameworks' own model code with random weights (never downloaded):
Keras applications (``weights=None``, the smallest input each accepts), Hugging Face transformers models from
small configs exported with ``torch.export``, PyTorch models written the way users write them, ONNX files in
the shapes the model zoo has (weights as initializers listed as inputs, as ``Constant`` nodes, as
``ConstantOfShape`` outputs; opsets 9 to the latest), and the SavedModel and TFLite forms of Keras models.

``MODELS`` maps file name -> builder, as in the other modules of this package; ``FAMILY`` maps each name to the
framework its builder imports (``tf`` or ``torch``), so a runner can build each family in its own process.
``python -m tests.models.zoo_models OUT_DIR [NAME ...]`` builds the named models (all by default) into OUT_DIR
and merges their facts into ``OUT_DIR/facts.json``; a builder that raises is recorded as ``build_error``.
"""
from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# ---- Keras applications ------------------------------------------------------------------------------------
def _kapp(ctor: str, shape, **kw):
    def build(out):
        import keras
        import numpy as np

        keras.utils.set_random_seed(0)
        if kw.get("include_top", True):  # logits, not a saturated softmax: parity then means something
            kw.setdefault("classifier_activation", None)
        m = _calibrate(getattr(keras.applications, ctor)(weights=None, input_shape=shape, **kw))
        m.save(out)
        y = np.asarray(m(np.random.default_rng(3).random((1,) + tuple(shape)).astype("float32")))
        return {"family": "keras", "source": "keras", "input_shape": [1, *shape], "output_shape": list(y.shape),
                "params": int(m.count_params()), "arch": ctor, "output_std": float(y.std())}
    return build


def _calibrate(m):
    """Set every BatchNormalization's moving statistics to those of a batch of inputs like the ones parity
    checks use (uniform in [0, 1)). With the initial statistics (0 and 1) a deep random network's signal
    fades layer by layer to ~1e-16, and any two runtimes then "agree"."""
    import keras
    import numpy as np

    bns = [l for l in m._flatten_layers() if isinstance(l, keras.layers.BatchNormalization)]
    saved = [l.momentum for l in bns]
    for l in bns:
        l.momentum = 0.0
    x = np.random.default_rng(0).random((8, *m.input_shape[1:])).astype("float32")
    m(x, training=True)
    for l, mom in zip(bns, saved):
        l.momentum = mom
    return m


_KERAS_APPS = {
    "k_mobilenetv2.keras": _kapp("MobileNetV2", (96, 96, 3), alpha=0.35, classes=10),
    "k_mobilenetv3small.keras": _kapp("MobileNetV3Small", (32, 32, 3), classes=10),
    "k_efficientnetb0.keras": _kapp("EfficientNetB0", (32, 32, 3), classes=10),
    "k_resnet50.keras": _kapp("ResNet50", (32, 32, 3), classes=10),
    "k_densenet121.keras": _kapp("DenseNet121", (32, 32, 3), classes=10),
    "k_xception.keras": _kapp("Xception", (71, 71, 3), classes=10),
    "k_inceptionv3.keras": _kapp("InceptionV3", (75, 75, 3), classes=10),
    "k_vgg16.keras": _kapp("VGG16", (32, 32, 3), include_top=False, pooling="max"),
    "k_convnexttiny.keras": _kapp("ConvNeXtTiny", (32, 32, 3), classes=10),
}


def _keras_small_cnn():
    import keras

    keras.utils.set_random_seed(0)
    return _calibrate(keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35, classes=10,
                                                     classifier_activation=None))


def _keras_small_seq():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 8), name="tokens")
    x = keras.layers.Conv1D(16, 3, padding="same", activation="relu")(inp)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.MultiHeadAttention(2, 8)(x, x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inp, keras.layers.Dense(4)(x), name="attn_seq")


def _savedmodel(make):
    def build(out):
        m = make()
        m.export(out, verbose=False)
        return {"family": "keras", "source": "savedmodel", "input_shape": [1, *m.input_shape[1:]]}
    return build


def _tflite(make):
    def build(out):
        import tensorflow as tf

        m = make()
        with open(out, "wb") as f:
            f.write(tf.lite.TFLiteConverter.from_keras_model(m).convert())
        return {"family": "keras", "source": "tflite", "input_shape": [1, *m.input_shape[1:]]}
    return build


_TF_FORMS = {
    "sm_mobilenetv2": _savedmodel(_keras_small_cnn),
    "sm_attn_seq": _savedmodel(_keras_small_seq),
    "tfl_mobilenetv2.tflite": _tflite(_keras_small_cnn),
    "tfl_attn_seq.tflite": _tflite(_keras_small_seq),
}


# ---- transformers from small configs -------------------------------------------------------------------------
def _export(model, args, out, kwargs=None, arch=""):
    import torch

    model.eval()
    ep = torch.export.export(model, tuple(args), kwargs=kwargs or {}, strict=False)
    torch.export.save(ep, out)
    with torch.no_grad():
        y = model(*args, **(kwargs or {}))
    first = next(iter(y.values())) if isinstance(y, dict) else (y[0] if isinstance(y, (tuple, list)) else y)
    return {"output_std": float(first.float().std()), "family": "torch", "source": "pt2",
            "arch": arch or type(model).__name__,
            "params": int(sum(p.numel() for p in model.parameters())),
            "inputs": {k: list(v.shape) for k, v in
                       list(zip([f"arg{i}" for i in range(len(args))], args)) + list((kwargs or {}).items())}}


def _ids(vocab=100, seq=8):
    import torch

    return torch.randint(0, vocab, (1, seq), generator=torch.Generator().manual_seed(0))


_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def hf_bert(out):
    from transformers import BertConfig, BertModel

    return _export(BertModel(BertConfig(vocab_size=100, max_position_embeddings=64, **_SMALL)), [_ids()], out)


def hf_distilbert(out):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    cfg = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64)
    return _export(DistilBertForSequenceClassification(cfg), [_ids()], out)


def hf_roberta(out):
    from transformers import RobertaConfig, RobertaForMaskedLM

    cfg = RobertaConfig(vocab_size=100, max_position_embeddings=66, **_SMALL)
    return _export(RobertaForMaskedLM(cfg), [_ids()], out)


def hf_gpt2(out):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=64, use_cache=False)
    return _export(GPT2LMHeadModel(cfg), [_ids()], out)


def hf_llama(out):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=100, num_key_value_heads=1, max_position_embeddings=64, use_cache=False, **_SMALL)
    return _export(LlamaForCausalLM(cfg), [_ids()], out)


def hf_qwen2(out):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=100, num_key_value_heads=1, max_position_embeddings=64, use_cache=False, **_SMALL)
    return _export(Qwen2ForCausalLM(cfg), [_ids()], out)


def hf_t5(out):
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=100, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
                   use_cache=False, decoder_start_token_id=0)
    return _export(T5ForConditionalGeneration(cfg), [], out,
                   kwargs={"input_ids": _ids(), "decoder_input_ids": _ids(seq=4)})


def hf_vit(out):
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    cfg = ViTConfig(image_size=32, patch_size=8, num_labels=10, **_SMALL)
    return _export(ViTForImageClassification(cfg), [torch.randn(1, 3, 32, 32)], out)


def hf_wav2vec2(out):
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2,
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, do_stable_layer_norm=True,
                         mask_time_prob=0.0)
    return _export(Wav2Vec2Model(cfg), [torch.randn(1, 1600)], out)


def hf_whisper_encoder(out):
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    cfg = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=16,
                        max_source_positions=32, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64,
                        vocab_size=100)
    return _export(WhisperEncoder(cfg), [torch.randn(1, 16, 64)], out)


def hf_convnext(out):
    import torch
    from transformers import ConvNextConfig, ConvNextForImageClassification

    cfg = ConvNextConfig(hidden_sizes=[16, 32], depths=[1, 1], num_stages=2, num_labels=10)
    return _export(ConvNextForImageClassification(cfg), [torch.randn(1, 3, 32, 32)], out)


def hf_resnet(out):
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    cfg = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic", num_labels=10)
    return _export(ResNetForImageClassification(cfg), [torch.randn(1, 3, 32, 32)], out)


def _seeded(fn):
    def build(out):
        import torch

        torch.manual_seed(0)
        return fn(out)
    return build


_HF = {f"hf_{k}.pt2": _seeded(v) for k, v in {
    "bert": hf_bert, "distilbert": hf_distilbert, "roberta": hf_roberta, "gpt2": hf_gpt2, "llama": hf_llama,
    "qwen2": hf_qwen2, "t5": hf_t5, "vit": hf_vit, "wav2vec2": hf_wav2vec2, "whisper_encoder": hf_whisper_encoder,
    "convnext": hf_convnext, "resnet": hf_resnet}.items()}


# ---- PyTorch models written the way users write them ------------------------------------------------------
def _user_modules():
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Net(nn.Module):
        """The tutorial CNN, with BatchNorm and dropout."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(16)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(32)
            self.dropout = nn.Dropout(0.25)
            self.fc1 = nn.Linear(32 * 8 * 8, 64)
            self.fc2 = nn.Linear(64, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
            x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
            x = self.dropout(torch.flatten(x, 1))
            return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)

    class LSTMClassifier(nn.Module):
        def __init__(self, vocab=50, emb=16, hidden=24, classes=3):
            super().__init__()
            self.embedding = nn.Embedding(vocab, emb)
            self.lstm = nn.LSTM(emb, hidden, num_layers=2, batch_first=True)
            self.fc = nn.Linear(hidden, classes)

        def forward(self, tokens):
            out, (h, c) = self.lstm(self.embedding(tokens))
            return self.fc(h[-1])

    class GRUTagger(nn.Module):
        def __init__(self, feats=8, hidden=16, tags=5):
            super().__init__()
            self.gru = nn.GRU(feats, hidden, batch_first=True, bidirectional=True)
            self.out = nn.Linear(2 * hidden, tags)

        def forward(self, x):
            y, _ = self.gru(x)
            return self.out(y)

    class TransformerClassifier(nn.Module):
        def __init__(self, d=32, heads=4, layers=2, classes=4):
            super().__init__()
            layer = nn.TransformerEncoderLayer(d, heads, 64, dropout=0.1, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            self.head = nn.Linear(d, classes)

        def forward(self, x):
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
            return self.head(self.encoder(x)[:, 0])

    class TinyLM(nn.Module):
        """Tied embedding / output weights and a causal mask kept as a registered buffer."""

        def __init__(self, vocab=64, d=32, seq=16):
            super().__init__()
            self.emb = nn.Embedding(vocab, d)
            self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.02)
            self.register_buffer("mask", torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1))
            self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
            self.ln = nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
            self.lm_head = nn.Linear(d, vocab, bias=False)
            self.lm_head.weight = self.emb.weight

        def forward(self, ids):
            t = ids.shape[1]
            x = self.emb(ids) + self.pos[:, :t]
            a, _ = self.attn(x, x, x, attn_mask=self.mask[:t, :t], need_weights=False)
            x = self.ln(x + a)
            return self.lm_head(x + self.mlp(x))

    return Net, LSTMClassifier, GRUTagger, TransformerClassifier, TinyLM


def _randomise_bn(model):
    import torch

    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _user(kind):
    def build(out):
        import torch

        torch.manual_seed(0)
        Net, LSTMClassifier, GRUTagger, TransformerClassifier, TinyLM = _user_modules()
        model, x = {
            "cnn": (Net, lambda: torch.randn(1, 3, 32, 32)),
            "lstm": (LSTMClassifier, lambda: torch.randint(0, 50, (1, 12))),
            "gru": (GRUTagger, lambda: torch.randn(1, 10, 8)),
            "transformer": (TransformerClassifier, lambda: torch.randn(1, 10, 32)),
            "tiedlm": (TinyLM, lambda: torch.randint(0, 64, (1, 16))),
        }[kind]
        m = model()
        _randomise_bn(m)
        return _export(m.eval(), [x()], out, arch=model.__name__)
    return build


_USER = {f"t_{k}.pt2": _user(k) for k in ("cnn", "lstm", "gru", "transformer", "tiedlm")}


# ---- ONNX in the model zoo's shapes -------------------------------------------------------------------------
def _onnx_facts(out, how):
    import onnx

    m = onnx.load(out)
    onnx.checker.check_model(m)
    inits = {t.name for t in m.graph.initializer}
    return {"family": "onnx", "source": "onnx", "how": how,
            "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
            "ir_version": m.ir_version, "nodes": len(m.graph.node),
            "inputs": [i.name for i in m.graph.input], "initializers_as_inputs": bool(
                inits & {i.name for i in m.graph.input})}


def _torch_onnx(opset, dynamo=False):
    def build(out):
        import torch

        torch.manual_seed(0)
        Net = _user_modules()[0]
        m = Net()
        _randomise_bn(m)
        m.eval()
        x = torch.randn(1, 3, 32, 32)
        if dynamo:
            torch.onnx.export(m, (x,), out, dynamo=True, external_data=False, opset_version=opset)
        else:  # the TorchScript exporter, as most zoo files were made (initializers listed as graph inputs)
            torch.onnx.export(m, (x,), out, dynamo=False, opset_version=opset, input_names=["input"],
                              output_names=["output"], keep_initializers_as_inputs=True)
        return _onnx_facts(out, f"torch.onnx.export(dynamo={dynamo}, opset_version={opset})")
    return build


def _helper_onnx(style, opset):
    """A conv - relu - global pool - gemm classifier written with onnx.helper: weights as initializers,
    as Constant nodes, or built by ConstantOfShape (+ Add of a small initializer)."""
    def build(out):
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        w = rng.standard_normal((8, 3, 3, 3)).astype("float32") * 0.3
        b = rng.standard_normal(8).astype("float32") * 0.1
        fw = rng.standard_normal((10, 8)).astype("float32") * 0.3
        fb = rng.standard_normal(10).astype("float32") * 0.1
        nodes, inits = [], []
        if style == "constant":
            for name, arr in (("W", w), ("B", b), ("FW", fw), ("FB", fb)):
                nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name + "_v")))
        else:
            inits += [numpy_helper.from_array(w, "W"), numpy_helper.from_array(fw, "FW"),
                      numpy_helper.from_array(fb, "FB")]
            if style == "constantofshape":
                # bias = ConstantOfShape([8]) * 0.5 + delta, as exporters fold zero/one tensors
                nodes.append(helper.make_node("Constant", [], ["Bshape"],
                                              value=numpy_helper.from_array(np.array([8], "int64"), "Bs")))
                nodes.append(helper.make_node("ConstantOfShape", ["Bshape"], ["Bfill"],
                                              value=numpy_helper.from_array(np.array([0.5], "float32"), "Bv")))
                inits.append(numpy_helper.from_array(b - 0.5, "Bdelta"))
                nodes.append(helper.make_node("Add", ["Bfill", "Bdelta"], ["B"]))
            else:
                inits.append(numpy_helper.from_array(b, "B"))
        nodes += [helper.make_node("Conv", ["data", "W", "B"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
                  helper.make_node("Relu", ["c"], ["r"]),
                  helper.make_node("GlobalAveragePool", ["r"], ["g"]),
                  helper.make_node("Flatten", ["g"], ["f"], axis=1),
                  helper.make_node("Gemm", ["f", "FW", "FB"], ["logits"], transB=1),
                  helper.make_node("Softmax", ["logits"], ["prob"], axis=1)]
        inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 28, 28])]
        if style == "initializer":  # IR 3 style: every initializer also a graph input
            inputs += [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in inits]
        g = helper.make_graph(nodes, f"zoo_{style}", inputs,
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 10])], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="zoo-style")
        m.ir_version = 3 if opset <= 8 else (7 if opset <= 12 else 8)
        onnx.save(m, out)
        return _onnx_facts(out, f"onnx.helper ({style}, opset {opset})")
    return build


def _latest_opset():
    import onnx

    # the newest opset both onnx and onnxruntime know
    return min(onnx.defs.onnx_opset_version(), 22)


def _latest_torch(out):
    return _torch_onnx(_latest_opset(), dynamo=True)(out)


_ONNX = {
    "o_cnn_op9.onnx": _torch_onnx(9),
    "o_cnn_op11.onnx": _torch_onnx(11),
    "o_cnn_op13.onnx": _torch_onnx(13),
    "o_cnn_op17.onnx": _torch_onnx(17),
    "o_cnn_latest.onnx": _latest_torch,
    "o_helper_init_op8.onnx": _helper_onnx("initializer", 8),
    "o_helper_const_op11.onnx": _helper_onnx("constant", 11),
    "o_helper_cos_op13.onnx": _helper_onnx("constantofshape", 13),
}

MODELS = {**_KERAS_APPS, **_TF_FORMS, **_HF, **_USER, **_ONNX}
FAMILY = {name: ("tf" if name in _KERAS_APPS or name in _TF_FORMS else "torch") for name in MODELS}


def build(out_dir: str, names=None) -> dict:
    """Build ``names`` (default: all) into ``out_dir``; merge and return the facts of ``facts.json``."""
    os.makedirs(out_dir, exist_ok=True)
    facts_path = os.path.join(out_dir, "facts.json")
    facts = json.load(open(facts_path)) if os.path.exists(facts_path) else {}
    for name in names or list(MODELS):
        try:
            facts[name] = MODELS[name](os.path.join(out_dir, name)) or {}
        except Exception:
            traceback.print_exc()
            facts[name] = {"build_error": traceback.format_exc(limit=4)}
        with open(facts_path + ".tmp", "w") as f:
            json.dump(facts, f, indent=1, default=str)
        os.replace(facts_path + ".tmp", facts_path)
    return facts


if __name__ == "__main__":
    build(sys.argv[1], sys.argv[2:])
    sys.stdout.flush()
    os._exit(0)
