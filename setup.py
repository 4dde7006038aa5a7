"""Ship the top-level templates/ folder inside the wheel as appshelf/site/_theme/.

Everything else lives in pyproject.toml. The site loader looks for the packaged copy
first and falls back to the checkout's templates/ (editable installs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

THEME_SOURCE = Path(__file__).resolve().parent / "templates"
THEME_TARGET = ("appshelf", "site", "_theme")


class BuildPyWithTheme(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads templates/ from the checkout
        target = Path(self.build_lib, *THEME_TARGET)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(THEME_SOURCE, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        base = Path(self.build_lib, *THEME_TARGET)
        outputs += [
            str(base / path.relative_to(THEME_SOURCE))
            for path in sorted(THEME_SOURCE.rglob("*"))
            if path.is_file()
        ]
        return outputs


setup(cmdclass={"build_py": BuildPyWithTheme})
