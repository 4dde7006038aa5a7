"""Resolution: root requirements (`app@range`) in, an install plan out, via resolvelib.

The registry's app.json files are the package index. Apps are resolvelib identifiers
named by their key; a `requires` interface is a virtual identifier `interface:<name>`
whose candidates are (app, version) pairs that `provides` it, each of which depends on
exactly that app version. So the resolver picks one provider per interface, unifies it
with any other requirement on the same app, and backtracks like any other conflict.

Rules: one version per app; every range satisfied; highest first; yanked versions
only when some requirement pins them exactly (`=1.1.0`); prereleases only when a range
names a prerelease of the same major.minor.patch (node-semver) or the caller opts in.
A root requirement may name a channel instead of a range (`app@beta`): it becomes an
exact pin of the version the channel names (versions/channels.py says which texts are
channels; none is also a range).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import resolvelib
import semver
from resolvelib.structs import RequirementInformation

from appshelf.client.channels import app_channel
from appshelf.errors import (
    ClientUsageError,
    InvalidRangeError,
    ResolutionImpossibleError,
    UnknownAppError,
)
from appshelf.formats.documents import AppDetail, VersionEntry
from appshelf.formats.layout import APP_KEY_RE
from appshelf.versions import Range, parse_range, parse_version
from appshelf.versions.channels import is_channel_name

INTERFACE_PREFIX = "interface:"
AppSource = Callable[[str], AppDetail | None]
ChannelSource = Callable[[str, str], str]  # (app, channel) -> version


@dataclass(frozen=True)
class Requirement:
    name: str  # an app key, or "interface:<name>"
    range: Range | None  # None for interfaces (and channels until they are looked up)
    text: str  # as the user or the manifest wrote it
    channel: str | None = None  # `app@beta`: the channel named instead of a range

    @property
    def interface(self) -> str | None:
        return (
            self.name[len(INTERFACE_PREFIX) :] if self.name.startswith(INTERFACE_PREFIX) else None
        )

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Candidate:
    name: str
    version: semver.Version
    entry: VersionEntry
    provider: str | None = None  # for interface candidates: the app providing it

    @property
    def app(self) -> str:
        return self.provider or self.name

    def __str__(self) -> str:
        return f"{self.app} {self.version}"


def parse_requirement(text: str) -> Requirement:
    """Parse one requirement as a user writes it: `app`, `app@^1.2`, `app@=1.1.0`,
    `app@1.x || 2` (npm range syntax; see docs/client.md), or `app@beta` (a channel).

    Args:
        text: The requirement; no range means any version.

    Returns:
        The requirement, with its range parsed.

    Raises:
        ClientUsageError: The app key is not a valid key.
        InvalidRangeError: The range does not parse (the message names the requirement).
    """
    key, _, spec = text.strip().partition("@")
    if not APP_KEY_RE.fullmatch(key):
        raise ClientUsageError(
            f"{text!r}: expected app@range with an app key like 'kv-store' (e.g. kv-store@^1.0)"
        )
    spec = spec.strip() or "*"
    if is_channel_name(spec):
        return Requirement(key, None, f"{key}@{spec}", channel=spec)
    try:
        parsed = parse_range(spec)
    except InvalidRangeError as exc:
        raise InvalidRangeError(f"{text}: {exc}") from None
    return Requirement(key, parsed, f"{key}@{spec}")


def _interface_requirement(interface: str) -> Requirement:
    return Requirement(INTERFACE_PREFIX + interface, None, f"interface {interface}")


@dataclass(frozen=True)
class PlannedInstall:
    """One app version chosen by `resolve`.

    Attributes:
        app: The app key.
        version: The version chosen: the highest that satisfies every range.
        entry: Its verified app.json entry (artifact, manifest pin, dependencies).
        required_by: Who asked for it: `(root)` for a requirement given to `resolve`,
            and/or `app version` for each dependent.
    """

    app: str
    version: str
    entry: VersionEntry
    required_by: list[str]


@dataclass
class Plan:
    """What `resolve` chose: one version per app, in install order.

    Attributes:
        requirements: The root requirements, normalised (`app@range`).
        installs: The versions to install, dependencies before their dependents.
        interfaces: For each `requires` interface, the app chosen to provide it.
    """

    requirements: list[str]
    installs: list[PlannedInstall]
    interfaces: dict[str, str] = field(default_factory=dict)


class _Provider(resolvelib.AbstractProvider[Requirement, Candidate, str]):
    def __init__(
        self,
        apps: AppSource,
        all_keys: Callable[[], list[str]],
        root_names: set[str],
        include_prerelease: bool,
    ):
        self.apps = apps
        self.all_keys = all_keys
        self.root_names = root_names
        self.include_prerelease = include_prerelease
        self.required_by: dict[str, list[tuple[Requirement, Candidate | None]]] = {}
        self._providers: dict[str, list[tuple[str, VersionEntry]]] | None = None

    def identify(self, requirement_or_candidate: Requirement | Candidate) -> str:
        return requirement_or_candidate.name

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> tuple[bool, bool, str]:
        causes = {info.requirement.name for info in backtrack_causes}
        # Real apps before interfaces (so providers unify with pinned apps), conflicts first.
        return (identifier.startswith(INTERFACE_PREFIX), identifier not in causes, identifier)

    def _versions(self, key: str) -> list[tuple[semver.Version, VersionEntry]]:
        detail = self.apps(key)
        if detail is None:
            return []
        parsed = []
        for entry in detail.versions:
            try:
                parsed.append((parse_version(entry.version), entry))
            except ClientUsageError:
                continue  # a version the client cannot order is never chosen
        return sorted(parsed, key=lambda pair: pair[0], reverse=True)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Requirement]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> list[Candidate]:
        reqs = list(requirements[identifier])
        bad = {(c.app, str(c.version)) for c in incompatibilities[identifier]}
        if identifier.startswith(INTERFACE_PREFIX):
            return [
                Candidate(identifier, parse_version(entry.version), entry, provider=app)
                for app, entry in self.providers(identifier[len(INTERFACE_PREFIX) :])
                if (app, entry.version) not in bad
            ]
        pinned = {str(r.range.exact) for r in reqs if r.range is not None and r.range.exact}
        found = []
        for version, entry in self._versions(identifier):
            if (identifier, str(version)) in bad:
                continue
            if entry.yanked is not None and str(version) not in pinned:
                continue
            candidate = Candidate(identifier, version, entry)
            if all(self.is_satisfied_by(r, candidate) for r in reqs):
                found.append(candidate)
        return found

    def providers(self, interface: str) -> list[tuple[str, VersionEntry]]:
        """Non-yanked (app, version) pairs providing `interface`; root apps first."""
        if self._providers is None:
            self._providers = {}
            for key in self.all_keys():
                for version, entry in self._versions(key):
                    if entry.yanked is not None or (
                        version.prerelease and not self.include_prerelease
                    ):
                        continue
                    for name in entry.provides:
                        self._providers.setdefault(name, []).append((key, entry))
        pairs = self._providers.get(interface, [])
        return sorted(pairs, key=lambda p: (p[0] not in self.root_names, p[0]))

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool:
        if requirement.range is None:
            return True
        return requirement.range.test(candidate.version, self.include_prerelease)

    def get_dependencies(self, candidate: Candidate) -> list[Requirement]:
        if candidate.provider is not None:
            version = str(candidate.version)
            deps = [
                Requirement(
                    candidate.provider,
                    parse_range(f"={version}"),
                    f"{candidate.provider}@={version}",
                )
            ]
        else:
            deps = []
            for key, spec in candidate.entry.dependencies.items():
                try:
                    deps.append(Requirement(key, parse_range(spec), f"{key}@{spec}"))
                except InvalidRangeError as exc:
                    raise InvalidRangeError(
                        f"{candidate} declares dependency {key}: {exc}"
                    ) from None
            deps += [_interface_requirement(name) for name in candidate.entry.requires]
        for dep in deps:
            self.required_by.setdefault(dep.name, []).append((dep, candidate))
        return deps


def resolve(
    roots: Iterable[Requirement | str],
    apps: AppSource,
    all_keys: Callable[[], list[str]],
    include_prerelease: bool = False,
    max_rounds: int = 10_000,
    channels: ChannelSource | None = None,
) -> Plan:
    """Resolve root requirements to one version per app (pip's resolver, resolvelib).

    Yanked versions are chosen only when a requirement pins them exactly; prereleases
    only as node-semver allows (or with `include_prerelease`). docs/client.md gives
    the rules.

    Args:
        roots: The requirements, as `Requirement` or text (`app@range`).
        apps: Returns an app's verified app.json, or None when there is no such app;
            usually `RegistryClient.app`, guarded by `app_keys`.
        all_keys: Returns every app key, to find the providers of an interface.
        include_prerelease: Let any range match prereleases.
        max_rounds: Give up after this many resolution rounds.
        channels: Returns the version a channel of an app names, for `app@beta`;
            usually `RegistryClient.channel` (checked against the release log).
            Default: app.json's `channels`, unchecked.

    Returns:
        The plan, dependencies first.

    Raises:
        ClientUsageError: No requirements, or one that does not parse.
        UnknownAppError: A root requirement names an app the registry does not have.
        UnknownChannelError: A root requirement names a channel the app does not have.
        InvalidRangeError: A requirement's or a dependency's range does not parse.
        ResolutionImpossibleError: No set of versions satisfies every requirement; the
            message lists the requirement chains that clash.
    """
    requirements = [r if isinstance(r, Requirement) else parse_requirement(r) for r in roots]
    if not requirements:
        raise ClientUsageError("nothing to resolve: give at least one app@range")
    for req in requirements:
        if apps(req.name) is None:
            raise UnknownAppError(f"{req}: no app {req.name!r} in this registry")
    requirements = [_pinned(r, apps, channels) for r in requirements]
    provider = _Provider(apps, all_keys, {r.name for r in requirements}, include_prerelease)
    for req in requirements:
        provider.required_by.setdefault(req.name, []).append((req, None))
    resolver: resolvelib.Resolver[Requirement, Candidate, str] = resolvelib.Resolver(
        provider, resolvelib.BaseReporter()
    )
    try:
        result = resolver.resolve(requirements, max_rounds=max_rounds)
    except resolvelib.ResolutionImpossible as exc:
        raise ResolutionImpossibleError(_explain(list(exc.causes), provider)) from None
    except resolvelib.ResolutionTooDeep:
        raise ResolutionImpossibleError(
            f"gave up after {max_rounds} resolution rounds; pin some versions exactly"
        ) from None
    return _plan(result, requirements, provider)


def _pinned(req: Requirement, apps: AppSource, channels: ChannelSource | None) -> Requirement:
    """A channel requirement as the exact pin of the version its channel names."""
    if req.channel is None:
        return req
    if channels is not None:
        version = channels(req.name, req.channel)
    else:
        detail = apps(req.name)
        assert detail is not None
        version = app_channel(detail, req.channel)[0]
    return Requirement(req.name, parse_range(f"={version}"), req.text)


def _plan(result: Any, requirements: list[Requirement], provider: _Provider) -> Plan:
    mapping: dict[str, Candidate] = result.mapping
    graph = result.graph
    interfaces = {
        name[len(INTERFACE_PREFIX) :]: cand.app
        for name, cand in mapping.items()
        if name.startswith(INTERFACE_PREFIX)
    }

    def app_children(name: str | None) -> list[str]:
        out: list[str] = []
        for child in sorted(graph.iter_children(name)):
            out += app_children(child) if child.startswith(INTERFACE_PREFIX) else [child]
        return out

    def parents_of(name: str) -> list[str]:
        labels = []
        for parent in graph.iter_parents(name):
            if parent is None:
                labels.append("(root)")
            elif parent.startswith(INTERFACE_PREFIX):
                labels += [f"{p} (via {parent})" for p in parents_of(parent)]
            else:
                labels.append(str(mapping[parent]))
        return sorted(set(labels))

    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:  # post-order: dependencies first; cycles stop at `seen`
        if name in seen:
            return
        seen.add(name)
        for child in app_children(name):
            visit(child)
        order.append(name)

    for root in app_children(None):
        visit(root)
    installs = [
        PlannedInstall(name, str(mapping[name].version), mapping[name].entry, parents_of(name))
        for name in order
    ]
    return Plan([r.text for r in requirements], installs, interfaces)


def _chain(
    req: Requirement,
    parent: Candidate | None,
    provider: _Provider,
    seen: frozenset[str] = frozenset(),
) -> str:
    """'you asked for a@^1 -> a 1.0.0 requires b@^2' for one requirement."""
    if parent is None:
        return f"you asked for {req}"
    how = f"{parent} requires {req}"
    if parent.provider is not None:
        how = f"{parent.provider} {parent.version} is the chosen provider of {parent.name}"
    if parent.name in seen:
        return how
    for up_req, up_parent in provider.required_by.get(parent.name, []):
        if provider.is_satisfied_by(up_req, parent):
            return _chain(up_req, up_parent, provider, seen | {parent.name}) + " -> " + how
    return how


def _explain(
    causes: Sequence[RequirementInformation[Requirement, Candidate]], provider: _Provider
) -> str:
    by_name: dict[str, list[RequirementInformation[Requirement, Candidate]]] = {}
    for info in causes:
        by_name.setdefault(info.requirement.name, []).append(info)
    lines = ["cannot find a set of versions that satisfies every requirement:"]
    for name, infos in sorted(by_name.items()):
        chains = sorted({_chain(i.requirement, i.parent, provider) for i in infos})
        if name.startswith(INTERFACE_PREFIX):
            interface = name[len(INTERFACE_PREFIX) :]
            if not provider.providers(interface):
                lines.append(f"  no app in the registry provides interface {interface!r}:")
            else:
                lines.append(
                    f"  no provider of interface {interface!r} fits the other requirements:"
                )
        elif provider.apps(name) is None:
            lines.append(f"  {name} is not in this registry:")
        else:
            versions = provider._versions(name)
            shown = (
                ", ".join(str(v) + (" (yanked)" if e.yanked else "") for v, e in versions) or "none"
            )
            if len(chains) > 1:
                lines.append(
                    f"  {name}: no single version satisfies all of these (published: {shown}):"
                )
            else:
                lines.append(f"  {name}: no version matches (published: {shown}):")
        lines += [f"    - {chain}" for chain in chains]
    lines.append(
        "Yanked versions are used only when pinned exactly (app@=1.2.3); prereleases only "
        "when a range names one (or with --prerelease)."
    )
    return "\n".join(lines)
