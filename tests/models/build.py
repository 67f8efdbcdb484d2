"""Build every model of one models module: ``python -m tests.models.build MODULE OUT_DIR``.

Writes each model into OUT_DIR and ``facts.json`` mapping file name -> facts returned by the builder.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


def main(argv):
    module, out_dir = argv[1], argv[2]
    os.makedirs(out_dir, exist_ok=True)
    mod = importlib.import_module(f"tests.models.{module}")
    facts = {}
    failed = []
    for name, builder in mod.MODELS.items():
        try:
            facts[name] = builder(os.path.join(out_dir, name)) or {}
        except Exception:
            traceback.print_exc()
            failed.append(name)
            facts[name] = {"build_error": traceback.format_exc(limit=3)}
    with open(os.path.join(out_dir, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    os._exit(code)
