"""A page state for tests/site/test_site_workers.py, importable by worker processes."""

from __future__ import annotations

import os
from typing import Any

import jinja2


class FailsInWorkers:
    """Renders a page as its path here, and raises a bug's exception in any worker."""

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def environment(self) -> jinja2.Environment:
        return jinja2.Environment(autoescape=True)

    def render(
        self, env: jinja2.Environment, template: str, path: str, root: str, context: dict[str, Any]
    ) -> bytes:
        if os.getpid() != self.parent:
            raise RuntimeError("a bug that shows only in a worker")
        return path.encode()
