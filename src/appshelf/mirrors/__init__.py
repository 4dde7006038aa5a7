"""Static read-API mirrors: other registries' read APIs as files (docs/spec.md)."""
