"""PyTorch readers (one module each): torch.export ``.pt2``, TorchScript, ``torch.save`` pickles and ``.safetensors``.

Trust model (what may run while a file is opened):

* ``.pt2`` (``torch.export.save``) is read from the archive's JSON and raw weight files by this module;
  ``torch.export.load`` is not used because in torch 2.13 it can run code from the file (it unpickles
  sample inputs and tensor-subclass weights with ``weights_only=False``, ``pickle.loads`` opaque
  constants and passes shape expressions to ``sympy.sympify``, which evaluates them). Reading it needs
  neither torch nor trust.
* ``torch.save`` files (``.pt/.pth/.ckpt/.bin``, zip or legacy) are read with a restricted unpickler: a
  small allow-list of tensor-rebuilding globals is implemented here, every other global becomes an inert
  placeholder that only records its name, arguments and state. No class from the file is imported and
  no function from it is called, so a Lightning checkpoint shows its weights and hyper-parameters
  without running its code (and without importing torch; tensors are memory-mapped from the archive).
  Only if that fails does torch's own ``torch.load(weights_only=True)`` get a try. A file whose top
  object is a pickled Python object (a whole ``nn.Module``) needs ``trust=True``, which loads it with
  ``torch.load(weights_only=False)``; without trust it raises :class:`TrustRequired`. A module stored
  *inside* a checkpoint dict shows the weights found in its pickled state.
* TorchScript archives are checked first (:mod:`converters.safety.torchscript`: no scripted
  ``__setstate__``, which ``torch.jit.load`` would run, no operator with effects outside the model such
  as ``torch.from_file``, every pickle pre-scanned), then loaded with ``torch.jit.load``; anything else
  needs trust. TorchScript code is compiled by TorchScript itself and can only call TorchScript
  operators (no Python builtins or imports). The forward graph is never run.
* ``.safetensors`` holds no code; only the header is read until a weight is asked for.

Every reader returns a :class:`converters.graph.Model`; weights are lazy :class:`Tensor` objects whose
loader returns a numpy array (``bfloat16`` becomes ``float32``; ``Tensor.dtype`` keeps the stored name).
"""
from __future__ import annotations

from .attach import ArchitectureMismatch, attach_architecture
from .checkpoint import load_pickle
from .pt2 import load_exported_program
from .safetensors import load_safetensors
from .torchscript import load_torchscript
from .user_code import add_user_folders_to_path, user_folders

__all__ = ["load_exported_program", "load_torchscript", "load_pickle", "load_safetensors",
           "attach_architecture", "ArchitectureMismatch", "add_user_folders_to_path", "user_folders"]
