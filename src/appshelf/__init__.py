"""appshelf: build, sign, serve and consume static app registries."""

__version__ = "0.1.0"
