"""Options shared by the consumer commands (search, resolve, fetch, lock, verify)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from appshelf.client import RegistryClient, trusted_keys
from appshelf.client.config import lookup
from appshelf.client.resolve import Plan, resolve
from appshelf.errors import UnknownAppError
from appshelf.formats.documents import AppDetail

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Trust:
    """What the consumer commands trust, and where they remember what they have seen."""

    keys: tuple[str, ...]
    keys_file: Path | None
    allow_dev_key: bool
    state_dir: Path | None
    ca_file: Path | None = None
    require_publisher: bool = False


def trust_options(func: F) -> F:
    """--key, --keys-file, --allow-dev-key, --state-dir, --ca-file, --require-publisher,
    handed to the command as `trust`."""

    @functools.wraps(func)
    def with_trust(*args: Any, **kwargs: Any) -> Any:
        kwargs["trust"] = Trust(
            keys=kwargs.pop("keys"),
            keys_file=kwargs.pop("keys_file"),
            allow_dev_key=kwargs.pop("allow_dev_key"),
            state_dir=kwargs.pop("state_dir"),
            ca_file=kwargs.pop("ca_file"),
            require_publisher=kwargs.pop("require_publisher"),
        )
        return func(*args, **kwargs)

    decorators = [
        click.option(
            "--key",
            "keys",
            multiple=True,
            metavar="HEX",
            envvar="APPSHELF_KEY",
            help="A trusted Ed25519 public key (64 hex digits); repeatable "
            "[env: APPSHELF_KEY, space-separated].",
        ),
        click.option(
            "--keys-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="A file of trusted public keys (a keys.json copy, or one hex key per line).",
        ),
        click.option(
            "--allow-dev-key",
            is_flag=True,
            help="Trust the public DEVELOPMENT key (local testing only; anyone can sign with it).",
        ),
        click.option(
            "--state-dir",
            type=click.Path(path_type=Path, file_okay=False),
            envvar="APPSHELF_STATE_DIR",
            help="Where the highest snapshot version seen is kept "
            "[default: $XDG_STATE_HOME/appshelf].",
        ),
        click.option(
            "--ca-file",
            type=click.Path(path_type=Path),
            envvar="APPSHELF_CA_FILE",
            help="Trust only these CA certificates (PEM) for https registries [env: "
            "APPSHELF_CA_FILE; default: REQUESTS_CA_BUNDLE, SSL_CERT_FILE, or the system "
            "trust store].",
        ),
        click.option(
            "--require-publisher",
            is_flag=True,
            help="Refuse any version whose publisher did not sign it (a publisher's "
            "signature, when there is one, is always checked).",
        ),
    ]
    wrapped: Any = with_trust
    for decorator in reversed(decorators):
        wrapped = decorator(wrapped)
    return cast(F, wrapped)


def registry_option(required: bool = True) -> Callable[[F], F]:
    return click.option(
        "-r",
        "--registry",
        envvar="APPSHELF_REGISTRY",
        required=required,
        metavar="URL|FOLDER|NAME",
        help="The registry's base URL, a local folder holding it, or a NAME given to "
        "`appshelf registry add` (which brings its keys) [env: APPSHELF_REGISTRY].",
    )


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def named(registry: str, trust: Trust) -> tuple[str, Trust]:
    """A NAME from `appshelf registry add` -> its URL, its keys added to the trusted ones."""
    entry = lookup(registry)
    if entry is None:
        return registry, trust
    required = trust.require_publisher or entry.require_publisher
    return entry.url, dataclasses.replace(
        trust, keys=(*trust.keys, *entry.keys), require_publisher=required
    )


def make_client(registry: str, trust: Trust, base_url: str | None = None) -> RegistryClient:
    """`base_url`: the registry the snapshot must name (default: the URL read from; for a
    folder, whichever registry its signed snapshot names)."""
    registry, trust = named(registry, trust)
    return RegistryClient(
        registry,
        trusted_keys(trust.keys, trust.keys_file, trust.allow_dev_key),
        allow_dev_key=trust.allow_dev_key,
        state_dir=trust.state_dir,
        expected_registry=base_url,
        ca_file=trust.ca_file,
        require_publisher=trust.require_publisher,
    )


def resolve_with(client: RegistryClient, requirements: tuple[str, ...], prerelease: bool) -> Plan:
    def app(key: str) -> AppDetail | None:
        try:
            return client.app(key)
        except UnknownAppError:
            return None

    return resolve(
        requirements, app, client.app_keys, include_prerelease=prerelease, channels=client.channel
    )


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "requirements": plan.requirements,
        "interfaces": plan.interfaces,
        "install": [
            {
                "app": item.app,
                "version": item.version,
                "yanked": item.entry.yanked,
                "required_by": item.required_by,
                "artifact": item.entry.artifact.model_dump(),
            }
            for item in plan.installs
        ],
    }


def show_plan(plan: Plan) -> None:
    click.echo(f"Install plan for {', '.join(plan.requirements)}:")
    width = max((len(i.app) for i in plan.installs), default=0)
    for item in plan.installs:
        yanked = "  [YANKED, pinned exactly]" if item.entry.yanked else ""
        click.echo(
            f"  {item.app:<{width}}  {item.version:<12} required by {', '.join(item.required_by)}"
            f"{yanked}"
        )
    for interface, app in sorted(plan.interfaces.items()):
        click.echo(f"  interface {interface} provided by {app}")


prerelease_option = click.option(
    "--prerelease", is_flag=True, help="Let every range match prerelease versions too."
)
