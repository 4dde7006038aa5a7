"""Deploy a built site to S3: read the bucket, plan, then upload phase by phase.

Reads are cheap and bounded: one listing, the deploy record, the snapshot, and only the
deployed app.json files that differ from the local ones. Writes are conditional: new
keys with If-None-Match, replaced keys with If-Match on the ETag read at plan time, and
the snapshot (the commit point) last with If-Match on the snapshot that was read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from appshelf.deploy.errors import REBUILD_HINT
from appshelf.deploy.files import INBOX, SNAPSHOT, STATE_KEY, Kind
from appshelf.deploy.ingested import INGESTED
from appshelf.deploy.plan import Action, DeployPlan, documents_to_fetch, plan_deploy
from appshelf.deploy.s3 import (
    ClientOptions,
    S3Store,
    S3Target,
    invalidate_cloudfront,
    invalidation_paths,
)
from appshelf.deploy.site import LocalSite, read_site
from appshelf.deploy.state import (
    DeployRecord,
    RecordedObject,
    RemoteObject,
    RemoteState,
    parse_record,
)
from appshelf.errors import AppshelfError, DeployConflictError, RemoteAccessError
from appshelf.formats.canonical import model_to_json, sha256_hex
from appshelf.formats.deploysettings import DeploySection

Events = Callable[[str], None]


@dataclass
class DeployOptions:
    client: ClientOptions = field(default_factory=ClientOptions)
    config: DeploySection = field(default_factory=DeploySection)
    delete: bool = False
    dry_run: bool = False
    cloudfront_distribution: str | None = None
    events: Events | None = None  # progress lines for the CLI


class PlannedItem(BaseModel):
    path: str
    action: str
    reason: str
    kind: str
    size: int


class DeployReport(BaseModel):
    target: str
    dry_run: bool
    uploaded: int
    uploaded_bytes: int
    skipped: int
    deleted: int
    notes: list[str]
    plan: list[PlannedItem]
    invalidation: str | None
    invalidation_paths: list[str]
    requests: dict[str, int]
    requests_total: int
    seconds: float


def read_remote(store: S3Store) -> RemoteState:
    """The listing, the deploy record's digests (valid while ETags match) and the snapshot."""
    state = RemoteState(objects=store.listing())
    # The publishers' inbox is input for the next build, never part of the deployed site.
    state.inbox = {r: state.objects.pop(r) for r in list(state.objects) if r.startswith(INBOX)}
    state.ingested = state.objects.pop(INGESTED, None)
    record = None
    if STATE_KEY in state.objects:
        fetched = store.get(STATE_KEY)
        record = parse_record(fetched[0]) if fetched is not None else None
        state.record = record
    if record is not None:
        for relpath, listed in list(state.objects.items()):
            known = record.objects.get(relpath)
            if known is not None and known.etag == listed.etag:
                state.objects[relpath] = RemoteObject(
                    listed.etag,
                    listed.size,
                    known.sha256,
                    known.content_type,
                    known.cache_control,
                    known.content_disposition,
                )
    if SNAPSHOT in state.objects:
        fetched = store.get(SNAPSHOT)
        if fetched is not None:
            state.snapshot_bytes, state.snapshot_etag = fetched
            old = state.objects[SNAPSHOT]
            if old.etag != fetched[1] or old.sha256 is None:
                state.objects[SNAPSHOT] = RemoteObject(
                    fetched[1],
                    len(fetched[0]),
                    sha256_hex(fetched[0]),
                    old.content_type,
                    old.cache_control,
                    old.content_disposition,
                )
    return state


def _fill_digests(store: S3Store, state: RemoteState, site: LocalSite, jobs: int) -> None:
    """HEAD the objects whose digest is unknown and could equal the local file."""
    unknown = [
        rel
        for rel, obj in state.objects.items()
        if rel in site.files
        and (obj.sha256 is None or obj.content_type is None)
        and obj.size == site.files[rel].size
    ]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for rel, head in zip(unknown, pool.map(store.head, unknown), strict=True):
            if head is not None:
                state.objects[rel] = head


def _fetch_documents(store: S3Store, state: RemoteState, relpaths: list[str], jobs: int) -> None:
    missing = [r for r in relpaths if r not in state.documents]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for rel, fetched in zip(missing, pool.map(store.get, missing), strict=True):
            if fetched is not None:
                state.documents[rel], state.document_etags[rel] = fetched


class BucketSource:
    """The deployed registry as a `PublishedSource` for `build --deploy`: reads go to the
    bucket (what was already fetched is reused); nothing is trusted until the build has
    verified it against its signing key."""

    def __init__(self, store: S3Store, state: RemoteState):
        self._store, self._state = store, state
        self.description = f"the deployed registry {store.target}"

    def read(self, relpath: str, limit: int) -> bytes | None:
        if relpath == SNAPSHOT:
            data = self._state.snapshot_bytes
        elif relpath in self._state.documents:
            data = self._state.documents[relpath]
        elif relpath not in self._state.objects:
            return None
        else:
            fetched = self._store.get(relpath, limit)
            data = fetched[0] if fetched is not None else None
        if data is not None and len(data) > limit:
            raise RemoteAccessError(f"{self.description}: {relpath} is larger than {limit} bytes")
        return data

    def is_empty(self) -> bool | None:
        return not self._state.objects


def read_published(store: S3Store, jobs: int = 8) -> tuple[BucketSource, RemoteState]:
    """What `build --deploy` starts from: the bucket's listing and snapshot, and a source
    the build reads (and verifies) the rest from."""
    state = read_remote(store)
    return BucketSource(store, state), state


def _run_phase(
    store: S3Store,
    site: LocalSite,
    actions: list[Action],
    jobs: int,
    etags: dict[str, str],
    events: Events | None,
) -> None:
    """Upload one phase's files; once one write fails, no other starts.

    A phase run one at a time (the log tiles) runs in order in this thread, so the file
    that failed is the last one written: a deploy that lost a tile to another deploy
    leaves nothing of its own after it.
    """
    lock = threading.Lock()
    failed = threading.Event()

    def upload(action: Action) -> None:
        if failed.is_set():
            return  # once one write has failed, no other starts
        try:
            _upload(action)
        except BaseException:
            failed.set()
            raise

    def _upload(action: Action) -> None:
        local = site.files[action.relpath]
        body: bytes | Path = local.path if action.size >= 1024 * 1024 else local.path.read_bytes()
        step = max(action.size // 4, 1)
        shown = [0]

        def progress(count: int) -> None:
            shown[0] += count
            big = action.size >= store.options.multipart_threshold
            crossed = shown[0] // step != (shown[0] - count) // step
            if events and big and crossed and shown[0] < action.size:
                events(f"  ... {action.relpath}: {100 * shown[0] // action.size}%")

        etag = store.put(
            action.relpath,
            body,
            action.sha256,
            action.content_type,
            action.cache_control,
            content_disposition=action.content_disposition,
            if_match=action.if_match,
            if_none_match=action.if_none_match,
            progress=progress,
        )
        with lock:
            etags[action.relpath] = etag
        if events:
            events(f"  uploaded  {action.relpath} ({action.reason}, {action.size} bytes)")

    if jobs == 1:  # in order, in this thread: the first failure is the last write
        for action in actions:
            upload(action)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(upload, a) for a in actions]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            error = future.exception()
            if error is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                raise error


def _check_snapshot_unchanged(store: S3Store, state: RemoteState) -> None:
    """Before touching anything the snapshot pins: has anyone deployed since we read?"""
    head = store.head(SNAPSHOT)
    now = head.etag if head is not None else None
    if now != state.snapshot_etag:
        raise DeployConflictError(
            f"{store.target}: another deploy replaced snapshot.json while this one was "
            f"uploading; this deploy stopped before changing any index; {REBUILD_HINT}"
        )


_ROLLBACK_KINDS = (Kind.MANIFEST, Kind.MANIFEST_REPLACED, Kind.APP_INDEX, Kind.TOP_INDEX)


def _rollback_copies(
    store: S3Store, state: RemoteState, plan: DeployPlan, jobs: int
) -> dict[str, bytes]:
    """The current bytes of every signed or pinned file this deploy will replace, so that a
    deploy that loses a race can put them back and leave the winner's state verifiable."""
    wanted = [a for a in plan.uploads if a.kind in _ROLLBACK_KINDS and a.if_match is not None]
    copies = {
        a.relpath: state.documents[a.relpath]
        for a in wanted
        if state.document_etags.get(a.relpath) == a.if_match
    }
    missing = [a for a in wanted if a.relpath not in copies]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for action, fetched in zip(
            missing, pool.map(store.get, [a.relpath for a in missing]), strict=True
        ):
            if fetched is not None and fetched[1] == action.if_match:
                copies[action.relpath] = fetched[0]
    return copies


def _rollback(
    store: S3Store, plan: DeployPlan, copies: dict[str, bytes], etags: dict[str, str]
) -> str:
    """Restore what this deploy replaced, each only if still ours (If-Match our ETag)."""
    restored, failed = 0, 0
    for action in reversed(plan.uploads):
        old = copies.get(action.relpath)
        mine = etags.get(action.relpath)
        if old is None or mine is None:
            continue
        try:
            store.put(
                action.relpath,
                old,
                sha256_hex(old),
                action.content_type,
                action.cache_control,
                content_disposition=action.content_disposition,
                if_match=mine,
            )
            restored += 1
        except AppshelfError:
            failed += 1
    if not restored and not failed:
        return "no index file had been replaced yet"
    text = f"put back the {restored} index file(s) it had replaced"
    if failed:
        text += f"; {failed} could not be put back (the next deploy repairs them)"
    return text


def execute(
    store: S3Store, site: LocalSite, state: RemoteState, plan: DeployPlan, options: DeployOptions
) -> dict[str, str]:
    """Upload in phases, delete, then record digests. Returns relpath -> new ETag."""
    etags: dict[str, str] = {}
    jobs = max(1, options.client.jobs)
    copies = _rollback_copies(store, state, plan, jobs)
    checked = False
    try:
        for actions in plan.phases():
            if not checked and actions[0].kind.phase >= Kind.APP_INDEX.phase:
                _check_snapshot_unchanged(store, state)
                checked = True
            one_by_one = actions[0].kind is Kind.LOG_TILE
            _run_phase(store, site, actions, 1 if one_by_one else jobs, etags, options.events)
    except DeployConflictError as exc:
        raise DeployConflictError(
            f"{exc}. This deploy {_rollback(store, plan, copies, etags)}"
        ) from None
    if plan.deletes:
        store.delete([a.relpath for a in plan.deletes])
        if options.events:
            options.events(f"  deleted   {len(plan.deletes)} stale object(s)")
    _write_record(store, site, state, plan, etags)
    return etags


def _write_record(
    store: S3Store, site: LocalSite, state: RemoteState, plan: DeployPlan, etags: dict[str, str]
) -> None:
    """Remember what is deployed now, and every object an earlier deploy wrote that is
    still there unchanged (so a later `--delete` knows appshelf wrote it); skipped when
    the record already says exactly this."""
    actions = {a.relpath: a for a in [*plan.uploads, *plan.skips]}
    deleted = {a.relpath for a in plan.deletes}
    earlier = state.record.objects if state.record is not None else {}
    kept = {
        relpath: recorded
        for relpath, recorded in earlier.items()
        if relpath not in site.files
        and relpath not in deleted
        and (listed := state.objects.get(relpath)) is not None
        and listed.etag == recorded.etag
    }
    objects = {
        relpath: RecordedObject(
            etag=etags.get(relpath) or state.objects[relpath].etag,
            sha256=local.sha256,
            content_type=actions[relpath].content_type,
            cache_control=actions[relpath].cache_control,
            content_disposition=actions[relpath].content_disposition,
        )
        for relpath, local in site.files.items()
    }
    objects = dict(sorted({**kept, **objects}.items()))
    record = DeployRecord(objects=objects)
    if state.record is not None and state.record.objects == objects:
        return
    data = model_to_json(record)
    store.put(STATE_KEY, data, sha256_hex(data), "application/json", "no-store")


def deploy_site(
    site_dir: Path,
    target_url: str,
    options: DeployOptions,
    state: RemoteState | None = None,
    store: S3Store | None = None,
) -> DeployReport:
    """The whole deploy; `state` may be passed in by `build --deploy` (already read)."""
    started = time.perf_counter()
    site = read_site(site_dir)
    target = S3Target.parse(target_url)
    store = store or S3Store(target, options.client)
    if state is None:
        state = read_remote(store)
    jobs = max(1, options.client.jobs)
    _fill_digests(store, state, site, jobs)
    _fetch_documents(store, state, documents_to_fetch(site, state), jobs)
    plan = plan_deploy(site, state, options.config, delete=options.delete)
    invalidation: str | None = None
    wanted = options.cloudfront_distribution is not None and plan.changed
    paths = invalidation_paths(target, plan.short_cache_paths()) if wanted else []
    if not options.dry_run:
        execute(store, site, state, plan, options)
        if options.cloudfront_distribution is not None and paths:
            invalidation = invalidate_cloudfront(
                options.cloudfront_distribution,
                paths,
                options.client,
                store.counter,
            )
    items = [
        PlannedItem(path=a.relpath, action=a.op, reason=a.reason, kind=a.kind.value, size=a.size)
        for a in [*plan.uploads, *plan.deletes, *plan.skips]
    ]
    return DeployReport(
        target=str(target),
        dry_run=options.dry_run,
        uploaded=len(plan.uploads),
        uploaded_bytes=sum(a.size for a in plan.uploads),
        skipped=len(plan.skips),
        deleted=len(plan.deletes),
        notes=plan.notes,
        plan=items,
        invalidation=invalidation,
        invalidation_paths=paths,
        requests=dict(sorted(store.counter.counts.items())),
        requests_total=store.counter.total,
        seconds=round(time.perf_counter() - started, 3),
    )
