"""Static mirrors of the registry in other registries' read APIs (opt-in, `[mirrors]`)."""
