"""The PySide6 desktop GUI: windows, tray, item models (the only layer that imports Qt)."""
