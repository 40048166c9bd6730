"""PyInstaller entry point for the llmlb bundle (see build.spec)."""

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
