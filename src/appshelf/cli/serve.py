"""`appshelf serve`: a live preview of a registry on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import click

from appshelf.site.preview import PreviewEvent, PreviewServer

_warned: list[bool] = []


def _show(event: PreviewEvent) -> None:
    if event.report is not None and event.report.warnings and not _warned:
        _warned.append(True)  # once: every rebuild would repeat the same warnings
        for warning in event.report.warnings:
            click.secho(f"Warning: {warning}", err=True, fg="yellow")
    if event.kind == "failed":
        click.secho(
            f"Build failed (still serving the last good site):\n{event.message}", err=True, fg="red"
        )
    elif event.kind == "built" and event.report is not None:
        report = event.report
        click.echo(
            f"Built: {report.apps} apps, {report.versions} versions, "
            f"{report.files_written} files written in {report.seconds:.2f} s"
        )


@click.command("serve")
@click.argument("source", type=click.Path(path_type=Path), default=Path("."))
@click.option(
    "-p",
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
def command(source: Path, port: int) -> None:
    """Build SOURCE, serve it on 127.0.0.1 and rebuild when it changes."""
    server = PreviewServer(source, port=port, on_event=_show)
    try:
        server.start()
        click.echo(f"Serving {server.source} at {server.url}")
        click.echo("Watching for changes; open pages reload after each rebuild. Ctrl+C stops.")
        server.wait()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.stop()
