"""Ed25519 keys and signed envelopes (pure: bytes in, trusted objects out)."""
