"""JSON Schemas for every file appshelf emits, generated from the models that write them."""

from __future__ import annotations

import json
from functools import cache

from pydantic import BaseModel

from appshelf.formats.documents import (
    AppDetail,
    BinDocument,
    KeysDocument,
    Manifest,
    RegistryIndex,
    Signed,
    Snapshot,
)
from appshelf.formats.flows import FlowsRegistry, FlowsVersions
from appshelf.formats.publishers import PublishersDocument
from appshelf.formats.statement import ReleaseStatement
from appshelf.formats.templates import TemplatesIndex

SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "registry": FlowsRegistry,
    "versions": FlowsVersions,
    "manifest": Signed[Manifest],
    "snapshot": Signed[Snapshot],
    "keys": KeysDocument,
    "app": AppDetail,
    "index": RegistryIndex,
    "bin": BinDocument,  # bins/<prefix>.json (docs/spec.md section 4.8)
    "statement": Signed[ReleaseStatement],  # apps/<key>/<version>/statement.json
    "publishers": PublishersDocument,
    "templates": TemplatesIndex,  # docs/spec.md section 15
}


@cache
def schema_files() -> dict[str, bytes]:
    """`schemas/<kind>.schema.json` -> bytes (pretty-printed: people read these)."""
    files: dict[str, bytes] = {}
    for kind, model in SCHEMA_MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        files[f"schemas/{kind}.schema.json"] = text.encode("utf-8")
    return files
