"""`appshelf serve`: a live preview of a registry on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import click

from appshelf.site.preview import PreviewEvent, PreviewServer

_warned: list[bool] = []
_servers: list[PreviewServer] = []


def _show(event: PreviewEvent) -> None:
    if event.report is not None and event.report.warnings and not _warned:
        _warned.append(True)  # once: every rebuild would repeat the same warnings
        for warning in event.report.warnings:
            click.secho(f"Warning: {warning}", err=True, fg="yellow")
    if event.kind == "failed":
        served = _servers and _servers[0].has_site
        state = "still serving the last good site" if served else "no site to serve yet"
        click.secho(f"Build failed ({state}):\n{event.message}", err=True, fg="red")
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
    _servers[:] = [server]
    try:
        click.secho(
            "PREVIEW: signed with the preview key (the development key), never with your "
            "signing key, whatever registry.toml says; no credentials are read. Nothing here "
            "is for publishing: build with `appshelf build` for that.",
            fg="yellow",
        )
        server.start()
        click.echo(f"Serving {server.source} at {server.url}")
        click.echo("Watching for changes; open pages reload after each rebuild. Ctrl+C stops.")
        server.wait()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.stop()
