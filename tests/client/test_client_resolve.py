"""Resolution over in-memory app.json data: the resolver is pure, so no server needed."""

from __future__ import annotations

import pytest

from appshelf.client.resolve import Plan, parse_requirement, resolve
from appshelf.errors import ClientUsageError, ResolutionImpossibleError, UnknownAppError
from appshelf.formats.documents import AppDetail, AppMetadata, ArtifactRef, FileDigest, VersionEntry

ZERO = "0" * 64


def _entry(
    key: str,
    version: str,
    deps: dict[str, str] | None = None,
    provides: list[str] | None = None,
    requires: list[str] | None = None,
    yanked: str | None = None,
) -> VersionEntry:
    return VersionEntry(
        version=version,
        published="2025-01-01T00:00:00Z",
        yanked=yanked,
        manifest_path=f"apps/{key}/{version}/manifest.json",
        manifest=FileDigest(sha256=ZERO, length=1),
        artifact=ArtifactRef(
            url=f"http://x/{key}-{version}", sha256=ZERO, size=1, filename=f"{key}-{version}.tar.gz"
        ),
        provides=provides or [],
        requires=requires or [],
        dependencies=deps or {},
    )


def _registry(*apps: tuple[str, list[VersionEntry]]) -> dict[str, AppDetail]:
    meta = AppMetadata(name="x", description="x", color="#000000")
    return {key: AppDetail(key=key, metadata=meta, versions=versions) for key, versions in apps}


def _resolve(registry: dict[str, AppDetail], *roots: str, pre: bool = False) -> Plan:
    return resolve(roots, registry.get, lambda: sorted(registry), include_prerelease=pre)


def _picked(plan: Plan) -> dict[str, str]:
    return {item.app: item.version for item in plan.installs}


def test_diamond_picks_the_highest_version_both_sides_accept() -> None:
    reg = _registry(
        ("app", [_entry("app", "1.0.0", {"left": "^1", "right": "^1"})]),
        ("left", [_entry("left", "1.0.0", {"base": ">=1.0.0 <3"})]),
        ("right", [_entry("right", "1.0.0", {"base": "~1.2"})]),
        ("base", [_entry("base", v) for v in ("2.0.0", "1.3.0", "1.2.5", "1.2.0", "1.0.0")]),
    )
    plan = _resolve(reg, "app")
    assert _picked(plan) == {"app": "1.0.0", "left": "1.0.0", "right": "1.0.0", "base": "1.2.5"}
    order = [item.app for item in plan.installs]
    assert order.index("base") < order.index("left") < order.index("app")
    base = next(i for i in plan.installs if i.app == "base")
    assert base.required_by == ["left 1.0.0", "right 1.0.0"]


def test_backtracks_to_an_older_version_that_fits() -> None:
    reg = _registry(
        ("app", [_entry("app", "2.0.0", {"base": "^2"}), _entry("app", "1.0.0", {"base": "^1"})]),
        ("base", [_entry("base", "2.0.0"), _entry("base", "1.0.0")]),
    )
    assert _picked(_resolve(reg, "app", "base@^1")) == {"app": "1.0.0", "base": "1.0.0"}


def test_conflict_is_explained_with_both_chains() -> None:
    reg = _registry(
        ("web", [_entry("web", "1.0.0", {"auth": "^1"})]),
        ("auth", [_entry("auth", "1.0.0", {"crypto": "^1.0.0"})]),
        ("cli", [_entry("cli", "1.0.0", {"crypto": "^2.0.0"})]),
        ("crypto", [_entry("crypto", "2.0.0"), _entry("crypto", "1.0.0")]),
    )
    with pytest.raises(ResolutionImpossibleError) as info:
        _resolve(reg, "web", "cli")
    message = str(info.value)
    assert "crypto: no single version satisfies all of these" in message
    assert (
        "you asked for web@* -> web 1.0.0 requires auth@^1 -> auth 1.0.0 requires crypto@^1.0.0"
        in message
    )
    assert "you asked for cli@* -> cli 1.0.0 requires crypto@^2.0.0" in message


def test_cycle_resolves_and_is_ordered() -> None:
    reg = _registry(
        ("a", [_entry("a", "1.0.0", {"b": "^1"})]),
        ("b", [_entry("b", "1.0.0", {"c": "^1"})]),
        ("c", [_entry("c", "1.0.0", {"a": "^1"})]),
    )
    plan = _resolve(reg, "a")
    assert _picked(plan) == {"a": "1.0.0", "b": "1.0.0", "c": "1.0.0"}
    assert [i.app for i in plan.installs] == ["c", "b", "a"]


def test_cycle_with_a_conflict_is_reported() -> None:
    reg = _registry(
        ("a", [_entry("a", "1.0.0", {"b": "^1"})]),
        ("b", [_entry("b", "1.0.0", {"a": "^2"})]),
    )
    with pytest.raises(ResolutionImpossibleError, match=r"a: no single version"):
        _resolve(reg, "a")


def test_prereleases_only_when_asked() -> None:
    reg = _registry(("h", [_entry("h", "2.0.0-beta.1"), _entry("h", "1.1.0")]))
    assert _picked(_resolve(reg, "h")) == {"h": "1.1.0"}
    assert _picked(_resolve(reg, "h@^1.0.0")) == {"h": "1.1.0"}
    assert _picked(_resolve(reg, "h@>=2.0.0-alpha")) == {"h": "2.0.0-beta.1"}
    assert _picked(_resolve(reg, "h@2.0.0-beta.1")) == {"h": "2.0.0-beta.1"}
    assert _picked(_resolve(reg, "h", pre=True)) == {"h": "2.0.0-beta.1"}
    with pytest.raises(ResolutionImpossibleError, match=r"h: no version matches"):
        _resolve(reg, "h@^2.0.0")  # `^2.0.0` does not name a prerelease of 2.0.0


def test_yanked_only_when_pinned_exactly() -> None:
    reg = _registry(
        ("kv", [_entry("kv", "1.1.0", yanked="broken"), _entry("kv", "1.0.0")]),
        ("user", [_entry("user", "1.0.0", {"kv": "^1.0.0"})]),
    )
    assert _picked(_resolve(reg, "kv")) == {"kv": "1.0.0"}
    assert _picked(_resolve(reg, "kv@=1.1.0")) == {"kv": "1.1.0"}
    assert _picked(_resolve(reg, "kv@1.1.0")) == {"kv": "1.1.0"}
    # An exact pin also lets other requirements share the yanked version.
    assert _picked(_resolve(reg, "user", "kv@=1.1.0")) == {"user": "1.0.0", "kv": "1.1.0"}
    with pytest.raises(ResolutionImpossibleError, match=r"1.1.0 \(yanked\)"):
        _resolve(reg, "kv@~1.1")


def test_requires_is_satisfied_by_a_provider() -> None:
    reg = _registry(
        ("sync", [_entry("sync", "1.0.0", requires=["storage.kv"])]),
        ("redis", [_entry("redis", "2.0.0", provides=["storage.kv"])]),
        ("sqlite", [_entry("sqlite", "1.0.0", provides=["storage.kv"])]),
    )
    plan = _resolve(reg, "sync")
    assert plan.interfaces == {"storage.kv": "redis"}
    assert _picked(plan) == {"sync": "1.0.0", "redis": "2.0.0"}
    # A provider the user asked for is preferred over others.
    plan = _resolve(reg, "sync", "sqlite")
    assert plan.interfaces == {"storage.kv": "sqlite"}
    assert "redis" not in _picked(plan)


def test_unsatisfiable_requires() -> None:
    reg = _registry(("sync", [_entry("sync", "1.0.0", requires=["storage.sql"])]))
    with pytest.raises(ResolutionImpossibleError) as info:
        _resolve(reg, "sync")
    assert "no app in the registry provides interface 'storage.sql'" in str(info.value)
    assert "you asked for sync@* -> sync 1.0.0 requires interface storage.sql" in str(info.value)


def test_unknown_apps() -> None:
    reg = _registry(("a", [_entry("a", "1.0.0", {"ghost": "^1"})]))
    with pytest.raises(UnknownAppError, match=r"no app 'nope'"):
        _resolve(reg, "nope")
    with pytest.raises(ResolutionImpossibleError, match=r"ghost is not in this registry"):
        _resolve(reg, "a")


def test_requirement_app_key_is_matched_whole() -> None:
    assert parse_requirement(" kv-store@^1 ").name == "kv-store"
    with pytest.raises(ClientUsageError, match=r"expected app@range"):
        parse_requirement("kv-store\n@^1")
