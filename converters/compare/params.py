"""The ``compare`` task's parameters as the window builds them: one home, shared with the benchmarks.

:func:`parity_after_conversion` is exactly what runs after a conversion in the window (and what
``benchmarks/zoo.py`` runs to check that the window's verdict equals ``tensorbridge compare``'s).
"""
from __future__ import annotations

import os
import tempfile

__all__ = ["compare_params", "parity_after_conversion"]


def compare_params(a: str, b: str, *, preset: str = "fp32", device_a: str = "cpu", device_b: str = "cpu",
                   seed: int = 0, batch: int | None = None, inputs: list[str] | None = None,
                   capture_map: bool = False, trust: bool = False, out_dir: str | None = None,
                   per_layer: bool = False, samples: int = 1) -> dict:
    """The ``compare`` task's params for paths ``a`` (reference) and ``b``. The result folder (arrays,
    JSON, ``report.html``) is ``out_dir`` or a new folder under the jobs folder. ``per_layer``: pair
    the layers of both graphs and compare each pair (the first divergence, local against inherited error).
    ``samples``: that many seeded random input sets (seed, seed + 1, …), each output keeping its worst."""
    if out_dir is None:
        from ..jobs import jobs_root

        out_dir = tempfile.mkdtemp(prefix="parity-", dir=jobs_root())
    from ..jobs.protocol import CompareParams

    return CompareParams(os.path.abspath(a), os.path.abspath(b), preset=preset, device_a=device_a,
                         device_b=device_b, seed=int(seed), batch=int(batch) if batch else None,
                         inputs=[os.path.abspath(f) for f in inputs] if inputs else None, capture_map=capture_map,
                         trust=trust, save_dir=out_dir, report=os.path.join(out_dir, "report.html"),
                         per_layer=bool(per_layer), samples=max(1, int(samples))).to_dict()


def parity_after_conversion(src: str, out: str, convert_options: dict | None = None, *,
                            out_dir: str | None = None) -> dict:
    """A conversion's source against its output: CPU, seeded random inputs, the fp16 preset when the
    conversion wrote float16 weights (else fp32), the converter's map when it wrote one."""
    from ..tbmap import map_path

    opts = convert_options or {}
    return compare_params(src, out, preset="fp16" if opts.get("fp16") else "fp32",
                          capture_map=os.path.exists(map_path(out)), trust=bool(opts.get("trust")),
                          out_dir=out_dir)
