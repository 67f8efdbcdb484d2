"""Entry point of the bundled ``tensorbridge`` executable: the window and the CLI, as the installed
``tensorbridge`` script (``app.__main__:main``). A script of its own because PyInstaller runs its entry
as ``__main__`` outside any package, where ``app/__main__.py``'s relative imports cannot work."""
import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
