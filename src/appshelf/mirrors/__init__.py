"""Static read-API mirrors of other registries' HTTP APIs (docs/spec.md section 12)."""
