"""The build's side of channels: log what channels.toml changed (pure: no I/O).

A channel must name a version of its app that is logged and not taken down when its
entry is appended (the planner calls this after the app's versions are planned, so a
new version can be pointed at in the build that first publishes it). A channel that
the log holds and channels.toml no longer names is removed by an entry without
`version`.
"""

from __future__ import annotations

from collections.abc import Mapping

from appshelf.errors import Problem
from appshelf.formats.documents import ChannelRef
from appshelf.formats.log import ChannelEntry
from appshelf.signing.releaselog import LogState


def log_channels(
    state: LogState, app: str, wanted: Mapping[str, str], logged: str, where: str
) -> list[Problem]:
    """Append the entries that take the app's logged channels to `wanted`; return the
    problems instead (appending nothing) when a channel names no live release."""
    problems = []
    for name, wanted_version in sorted(wanted.items()):
        release = state.releases.get((app, wanted_version))
        if release is None or release.standing.takedown is not None:
            problems.append(
                Problem(
                    where,
                    name,
                    f"{wanted_version!r} is not a published version of {app} (or it is taken down)",
                )
            )
    if problems:
        return problems
    current = state.app_channels(app)
    for name in sorted(current.keys() | wanted.keys()):
        version = wanted.get(name)
        now = current.get(name)
        if (now.version if now is not None else None) != version:
            state.append(
                ChannelEntry(
                    registry=state.registry or "",
                    logged=logged,
                    app=app,
                    channel=name,
                    version=version,
                )
            )
    return []


def channel_refs(state: LogState, app: str) -> dict[str, ChannelRef] | None:
    """app.json's `channels`: None (absent) when the app has none."""
    refs = {
        name: ChannelRef(version=c.version, log_index=c.index)
        for name, c in state.app_channels(app).items()
    }
    return refs or None
