"""Entry point of the bundled worker executable (``tensorbridge-worker``): same as
``python -m converters.jobs.worker JOB_DIR FD [--wait MODULES]``."""
import os
import sys

from converters.jobs.worker import main

if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
