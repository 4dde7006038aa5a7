"""The build pipeline: source tree -> hashes -> planned documents -> atomic output."""

from appshelf.builder.pipeline import BuildOptions, BuildReport, build_registry

__all__ = ["BuildOptions", "BuildReport", "build_registry"]
