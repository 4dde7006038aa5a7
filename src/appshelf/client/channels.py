"""Channels (dist-tags) as a client reads them: `app@beta` -> a version, checked
against the signed release log (docs/spec.md section 14).

app.json (pinned by the snapshot) says where each channel points and which log entry
set it; that entry is read with an inclusion proof against the snapshot's log head,
so a channel the log never recorded is refused even when app.json is signed.
"""

from __future__ import annotations

from appshelf.client import trusted as t
from appshelf.client.log import logged_entry
from appshelf.client.transport import Transport
from appshelf.errors import InconsistentMetadataError, LogInconsistentError, UnknownChannelError
from appshelf.formats.documents import AppDetail
from appshelf.formats.log import ChannelEntry


def app_channel(detail: AppDetail, channel: str) -> tuple[str, int]:
    """The version a channel of a verified app.json names, and its log entry's index.

    Raises:
        UnknownChannelError: the app has no such channel.
        InconsistentMetadataError: the channel names a version app.json does not list.
    """
    ref = (detail.channels or {}).get(channel)
    if ref is None:
        known = ", ".join(sorted(detail.channels or {})) or "none"
        raise UnknownChannelError(f"{detail.key}@{channel}: no such channel (channels: {known})")
    if all(entry.version != ref.version for entry in detail.versions):
        raise InconsistentMetadataError(
            f"{t.app_path(detail.key)}: channel {channel!r} names version {ref.version}, "
            "which it does not list"
        )
    return ref.version, ref.log_index


def checked_channel(
    transport: Transport, snapshot: t.TrustedSnapshot, detail: AppDetail, channel: str
) -> str:
    """The version `channel` names, once its log entry is proven to set exactly it.

    Raises:
        UnknownChannelError: the app has no such channel.
        InconsistentMetadataError: app.json's channel names a version it does not list.
        LogInconsistentError: the log entry app.json names is not in the signed log or does
            not set this channel to this version.
    """
    version, index = app_channel(detail, channel)
    entry = logged_entry(transport, snapshot, index)
    if not isinstance(entry, ChannelEntry) or (entry.app, entry.channel, entry.version) != (
        detail.key,
        channel,
        version,
    ):
        raise LogInconsistentError(
            f"{t.app_path(detail.key)}: channel {channel!r} -> {version} names release log "
            f"entry {index}, which does not set it"
        )
    return version
