"""setuptools hook (the project is configured in pyproject.toml): the wheel carries the model
catalog and the icon in app/_data/, since the source tree keeps them at its top, outside app/."""

from pathlib import Path
from shutil import copy2

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = ("catalog/supported_models.json", "resources/icon.png")


class BuildPy(build_py):
    """build_py, plus the data files app.core.paths.resource_root() finds in app/_data/."""

    def run(self) -> None:
        """Build the package, then copy the data beside it."""
        super().run()
        for name in DATA:
            target = Path(self.build_lib) / "app" / "_data" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            copy2(ROOT / name, target)


setup(cmdclass={"build_py": BuildPy})
