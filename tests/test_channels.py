"""Channels (dist-tags): declared in apps/<key>/channels.toml, logged as
`appshelf.log.channel` entries, published in app.json and on the app's page."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.errors import LogError, SourceTreeError
from appshelf.formats.log import ChannelEntry, KeyEntry, LoggedKey, decode_entry
from appshelf.signing.keys import development_key
from appshelf.signing.releaselog import LogState
from appshelf.site import site_generator
from appshelf.source.lifecycle import record_standing
from conftest import FIXED_NOW, build
from log_helpers import log_entries

CHANNELS = 'stable = "1.1.0"\nbeta = "2.0.0-beta.1"\n'


def _channels(out: Path, app: str = "hello-world") -> dict[str, dict[str, object]] | None:
    return json.loads((out / f"apps/{app}/app.json").read_bytes()).get("channels")


def test_channels_are_logged_published_moved_and_removed(
    example_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (example_source / "apps/hello-world/channels.toml").write_text(CHANNELS)
    build(example_source, out, generators=(site_generator(),))
    channels = _channels(out)
    assert channels is not None and set(channels) == {"beta", "stable"}
    assert channels["stable"]["version"] == "1.1.0"
    entries = log_entries(out)
    for name, ref in channels.items():
        entry = decode_entry(entries[int(ref["log_index"])])  # type: ignore[call-overload]
        assert isinstance(entry, ChannelEntry)
        assert (entry.app, entry.channel, entry.version) == ("hello-world", name, ref["version"])
    assert _channels(out, "kv-store") is None  # no channels: no member (golden unchanged)
    page = (out / "apps/hello-world/index.html").read_text()
    assert "Channel <code>beta</code>" in page and "2.0.0-beta.1" in page
    assert page.count('data-action="channel"') == 2  # the History section lists both entries

    # Moving a channel is a new entry; dropping one from channels.toml removes it.
    (example_source / "apps/hello-world/channels.toml").write_text('stable = "1.0.0"\n')
    report = build(
        example_source, out, now=FIXED_NOW + timedelta(hours=1), generators=(site_generator(),)
    )
    assert report.log_appended == 2
    moved = _channels(out)
    assert moved == {"stable": {"log_index": len(entries) + 1, "version": "1.0.0"}}
    tail = [decode_entry(e) for e in log_entries(out)[len(entries) :]]
    assert [(e.channel, e.version) for e in tail if isinstance(e, ChannelEntry)] == [
        ("beta", None),
        ("stable", "1.0.0"),
    ]
    page = (out / "apps/hello-world/index.html").read_text()
    assert page.count('data-action="channel-removed"') == 1
    # A rebuild with no change logs nothing.
    again = build(
        example_source, out, now=FIXED_NOW + timedelta(hours=2), generators=(site_generator(),)
    )
    assert (again.log_appended, again.files_written) == (0, 0)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('stable = "9.9.9"', "stable", "not a published version of hello-world"),
        ('x = "1.0.0"', "x", "also a version range"),
        ('v1 = "1.0.0"', "v1", "also a version range"),
        ('Beta = "1.0.0"', "Beta", "is not a channel name"),
        ('beta = "v1.0.0"', "beta", "not a SemVer 2.0.0 version"),
        ("beta = 1", "beta", "must be a version string"),
    ],
)
def test_bad_channels_are_source_errors(
    example_source: Path, tmp_path: Path, text: str, field: str, message: str
) -> None:
    (example_source / "apps/hello-world/channels.toml").write_text(text + "\n")
    with pytest.raises(SourceTreeError) as info:
        build(example_source, tmp_path / "out")
    problem = info.value.problems[0]
    assert (problem.path, problem.field) == ("apps/hello-world/channels.toml", field)
    assert message in problem.message
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_a_takedown_drops_the_channels_naming_it(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (example_source / "apps/hello-world/channels.toml").write_text(CHANNELS)
    build(example_source, out)
    record_standing(example_source, "hello-world", "1.1.0", "takedown", "legal request")
    # channels.toml still names it: refused, naming the channel.
    with pytest.raises(SourceTreeError, match=r"stable: '1\.1\.0' is not a published version"):
        build(example_source, out, now=FIXED_NOW + timedelta(hours=1))
    (example_source / "apps/hello-world/channels.toml").write_text('beta = "2.0.0-beta.1"\n')
    build(example_source, out, now=FIXED_NOW + timedelta(hours=1))
    assert set(_channels(out) or {}) == {"beta"}


def _state() -> LogState:
    key = development_key()
    state = LogState()
    genesis = LoggedKey(keyid=key.keyid, public=key.public_hex, development=True)
    state.append(
        KeyEntry(
            registry="https://r.example/",
            logged="2026-01-01T00:00:00Z",
            action="genesis",
            key=genesis,
        )
    )
    return state


def _channel(version: str | None, name: str = "beta") -> ChannelEntry:
    return ChannelEntry(
        registry="https://r.example/",
        logged="2026-01-01T00:00:00Z",
        app="a",
        channel=name,
        version=version,
    )


def test_replay_refuses_a_channel_without_a_live_release() -> None:
    with pytest.raises(LogError, match="not a logged release"):
        _state().append(_channel("1.0.0"))
    with pytest.raises(LogError, match="has no channel 'beta'"):
        _state().append(_channel(None))
    with pytest.raises(ValueError, match="pattern"):
        _channel("1.0.0", name="Beta")


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder", "huge", "not toml"])
def test_hostile_channels_files_are_source_errors(
    example_source: Path, tmp_path: Path, kind: str
) -> None:
    path = example_source / "apps/hello-world/channels.toml"
    if kind == "symlink":
        (example_source / "apps/hello-world/real.toml").write_text(CHANNELS)
        path.symlink_to("real.toml")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "huge":
        path.write_text("# " + "x" * 70_000 + "\n")
    else:
        path.write_text("stable = \n")
    result = CliRunner().invoke(main, ["build", str(example_source), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "Error:" in result.output and "apps/hello-world/channels.toml" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
