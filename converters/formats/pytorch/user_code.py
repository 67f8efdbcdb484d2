"""Where a user's own model code lives, for the paths that may import it (with trust)."""
from __future__ import annotations

import os
import sys




def user_folders(path: str | None = None) -> list[str]:
    """Where a user's own model code lives: the checkpoint's folder, the folder they work in (the
    caller's, passed to workers, which run in their job folders) and this process's own."""
    out = []
    caller = os.environ.get("TENSORBRIDGE_CALLER_CWD")  # set for workers, whose own folder is the job's
    for d in (os.path.dirname(os.path.abspath(path)) if path else None, caller or os.getcwd()):
        if d and os.path.isdir(d) and d not in out:
            out.append(d)
    return out


def add_user_folders_to_path(path: str | None = None) -> None:
    # A console-script entry point does not put the working folder on sys.path the way ``python -m``
    # does, and workers run in their job folders: add the folders the user's modules live in.
    for d in user_folders(path):
        if d not in sys.path:
            sys.path.append(d)
