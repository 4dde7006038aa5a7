"""The files appshelf emits, as pydantic models: the single source of their shape.

Writers build these models; readers (the client, `verify`) parse with the same
models; `schemas.py` turns them into JSON Schema for consumers in other languages.
"""
