"""PyInstaller entry point for the llmlb bundle (see build.spec)."""

import os
import sys

from app.main import main

if __name__ == "__main__":
    probe = os.environ.get("LLMLB_AMX_PROBE")
    if probe:  # the AMX check's child (app/node/engine/amx.py): one token, then exit
        from app.node.engine.amx import run_probe

        run_probe(probe)
        sys.exit(0)
    if os.environ.get("LLMLB_HISTORY_WRITER"):  # the request history's writer process
        from app.server.history_process import main as write_history

        write_history()
        sys.exit(0)
    sys.exit(main())
