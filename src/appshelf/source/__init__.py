"""The registry source tree: configuration models and the reader that validates them."""
