"""`appshelf registry add|list|remove`: named registries and their keys, like `helm repo`."""

from __future__ import annotations

import json

import click

from appshelf.client.config import add_registry, config_path, load_config, remove_registry
from appshelf.client.keys import trusted_keys


@click.group("registry")
def command() -> None:
    """Name registries with their trusted keys, then use `-r NAME` in every command."""


@command.command("add")
@click.argument("name")
@click.argument("url", metavar="URL|FOLDER")
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    metavar="HEX",
    help="The registry's Ed25519 public key (64 hex digits); repeatable during a rotation.",
)
@click.option(
    "--require-publisher",
    is_flag=True,
    help="Refuse versions without a publisher's signature (as --require-publisher does).",
)
def add(name: str, url: str, keys: tuple[str, ...], require_publisher: bool) -> None:
    """Remember URL as NAME, trusting KEY for it (replaces an existing NAME)."""
    trusted_keys(keys)  # the same checks and messages as --key everywhere else
    path = add_registry(name, url, list(keys), require_publisher=require_publisher)
    click.echo(f"Added {name} -> {url} ({len(keys)} key(s)) to {path}")
    click.echo(f"Use it as: appshelf search -r {name}")


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """Show the named registries."""
    config = load_config()
    if as_json:
        click.echo(json.dumps(config.model_dump()["registries"], indent=2))
        return
    if not config.registries:
        click.echo(f"No registries in {config_path()} (add one with `appshelf registry add`).")
        return
    width = max(len(name) for name in config.registries)
    for name, entry in sorted(config.registries.items()):
        keys = ", ".join(k[:16] + "..." for k in entry.keys)
        click.echo(f"{name:<{width}}  {entry.url}  keys: {keys}")


@command.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Forget the registry NAME."""
    path = remove_registry(name)
    click.echo(f"Removed {name} from {path}")
