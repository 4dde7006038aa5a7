"""Static mirrors of the registry in other registries' read APIs (opt-in, `[mirrors]`;
docs/spec.md sections 12, 14 and 15)."""
