"""The thin boto3 layer: list, read, conditionally write and delete objects of one prefix.

Every S3 error is turned into an `AppshelfError` that says what to do; credentials are
never part of a message. Each HTTP request is counted by operation (`RequestCounter`),
so the cost of a deploy is reported, not guessed.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from appshelf.deploy.errors import REBUILD_HINT
from appshelf.deploy.state import RemoteObject
from appshelf.errors import DeployConflictError, RemoteAccessError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SHA256_META = "sha256"  # stored as x-amz-meta-sha256
_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "403",
        "Forbidden",
    }
)


@dataclass(frozen=True)
class S3Target:
    bucket: str
    prefix: str  # "" or "some/path" (no leading or trailing slash)

    @classmethod
    def parse(cls, url: str) -> S3Target:
        if not url.startswith("s3://"):
            raise RemoteAccessError(f"{url!r}: expected s3://BUCKET or s3://BUCKET/PREFIX")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        if not bucket or any(part in ("", ".", "..") for part in prefix.split("/") if prefix):
            raise RemoteAccessError(f"{url!r}: expected s3://BUCKET or s3://BUCKET/PREFIX")
        return cls(bucket, prefix)

    def key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def relpath(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


class RequestCounter:
    """Counts HTTP requests (retries included) per operation, from botocore's events."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send", self._count)

    def _count(self, event_name: str, **kwargs: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.counts[operation] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def writes(self) -> int:
        return sum(
            n
            for op, n in self.counts.items()
            if op
            in (
                "PutObject",
                "UploadPart",
                "CreateMultipartUpload",
                "CompleteMultipartUpload",
                "DeleteObjects",
                "DeleteObject",
                "CopyObject",
            )
        )


@dataclass(frozen=True)
class ClientOptions:
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    jobs: int = 8
    multipart_threshold: int = 64 * 1024 * 1024
    max_attempts: int = 5


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def describe_access_error(exc: Exception, target: S3Target, what: str) -> RemoteAccessError:
    """A message that names the cause and the fix, never the credentials."""
    if isinstance(
        exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return RemoteAccessError(
            f"{target}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or pass --profile"
        )
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return RemoteAccessError(f"{target}: {exc}")
    if isinstance(
        exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectionError
    ):
        return RemoteAccessError(
            f"{target}: cannot connect to the S3 endpoint ({exc}); "
            "check --endpoint-url and the network"
        )
    if isinstance(exc, botocore.exceptions.ClientError):
        code = _error_code(exc)
        if code in _AUTH_CODES or _status(exc) == 403:
            return RemoteAccessError(
                f"{target}: the S3 server refused the credentials or their permissions while "
                f"trying to {what} ({code or 'HTTP 403'}). Check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY or --profile, and that the key may read, write and "
                "list this bucket"
            )
        if code == "NoSuchBucket":
            return RemoteAccessError(
                f"{target}: the bucket {target.bucket!r} does not exist; create it first"
            )
        return RemoteAccessError(
            f"{target}: S3 error while trying to {what}: {code or _status(exc)}: {exc}"
        )
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return RemoteAccessError(f"{target}: while trying to {what}: {exc}")
    raise exc


_CONFLICT_RETRIES = 4


class S3Store:
    """One bucket prefix, through one thread-safe boto3 client."""

    def __init__(
        self, target: S3Target, options: ClientOptions, counter: RequestCounter | None = None
    ):
        self.target = target
        self.options = options
        self.counter = counter or RequestCounter()
        try:
            session = boto3.session.Session(
                profile_name=options.profile, region_name=options.region
            )
            config = Config(
                retries={"mode": "adaptive", "max_attempts": options.max_attempts},
                max_pool_connections=max(10, options.jobs * 2),
                connect_timeout=10,
                read_timeout=120,
                s3={"addressing_style": "path"} if options.endpoint_url else {},
            )
            self.client: S3Client = session.client(
                "s3", endpoint_url=options.endpoint_url, config=config
            )
        except botocore.exceptions.BotoCoreError as exc:
            raise describe_access_error(exc, target, "connect") from None
        self.counter.attach(self.client)
        # Conditional headers for multipart uploads: s3transfer does not pass them through,
        # so they are added to CompleteMultipartUpload, which S3 checks atomically.
        self._multipart_conditions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.client.meta.events.register(
            "before-parameter-build.s3.CompleteMultipartUpload", self._add_condition
        )
        self.transfer = TransferConfig(
            multipart_threshold=options.multipart_threshold,
            multipart_chunksize=max(8 * 1024 * 1024, options.multipart_threshold // 8),
            max_concurrency=4,
            use_threads=True,
            preferred_transfer_client="classic",
        )

    def _add_condition(self, params: dict[str, Any], **kwargs: Any) -> None:
        with self._lock:
            params.update(self._multipart_conditions.get(params.get("Key", ""), {}))

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise describe_access_error(exc, self.target, what) from None

    def listing(self) -> dict[str, RemoteObject]:
        found: dict[str, RemoteObject] = {}
        prefix = f"{self.target.prefix}/" if self.target.prefix else ""
        with self._errors("list the bucket"):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.target.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    found[self.target.relpath(key)] = RemoteObject(item["ETag"], item["Size"])
        return found

    def _get_object(self, relpath: str) -> Any:
        """GetObject's response (its body unread), None when the object is absent."""
        try:
            return self.client.get_object(Bucket=self.target.bucket, Key=self.target.key(relpath))
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise

    def get(self, relpath: str, limit: int | None = None) -> tuple[bytes, str] | None:
        """The object's bytes and ETag (None when absent); past `limit` bytes, an error
        instead of reading on (a bucket is input like any server)."""
        with self._errors(f"read {relpath}"):
            response = self._get_object(relpath)
            if response is None:
                return None
            if limit is not None and int(response.get("ContentLength", 0)) > limit:
                response["Body"].close()
                raise RemoteAccessError(
                    f"{self.target}: {relpath} is larger than {limit} bytes; not a registry file"
                )
            data = response["Body"].read() if limit is None else response["Body"].read(limit + 1)
            if limit is not None and len(data) > limit:
                raise RemoteAccessError(
                    f"{self.target}: {relpath} is larger than {limit} bytes; not a registry file"
                )
            return data, response["ETag"]

    def download(self, relpath: str, handle: BinaryIO, limit: int) -> int | None:
        """Stream the object into `handle`; its size, or None when absent. More than
        `limit` bytes is an error, found before reading (Content-Length) or while."""
        with self._errors(f"read {relpath}"):
            response = self._get_object(relpath)
            if response is None:
                return None
            body, size = response["Body"], 0
            too_large = RemoteAccessError(f"{self.target}: {relpath} is larger than {limit} bytes")
            try:
                if int(response.get("ContentLength", 0)) > limit:
                    raise too_large
                while chunk := body.read(min(1 << 20, limit + 1 - size)):
                    size += len(chunk)
                    if size > limit:
                        raise too_large
                    handle.write(chunk)
            finally:
                body.close()
            return size

    def head(self, relpath: str) -> RemoteObject | None:
        with self._errors(f"read the metadata of {relpath}"):
            try:
                response = self.client.head_object(
                    Bucket=self.target.bucket, Key=self.target.key(relpath)
                )
            except botocore.exceptions.ClientError as exc:
                if _status(exc) == 404 or _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
            return RemoteObject(
                etag=response["ETag"],
                size=response["ContentLength"],
                sha256=response.get("Metadata", {}).get(SHA256_META),
                content_type=response.get("ContentType"),
                cache_control=response.get("CacheControl"),
                content_disposition=response.get("ContentDisposition"),
            )

    def put(
        self,
        relpath: str,
        body: bytes | Path,
        sha256: str,
        content_type: str,
        cache_control: str,
        content_disposition: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> str:
        """Write one object; return its ETag. A failed condition raises DeployConflictError,
        unless the object already holds exactly these bytes (a retried or twin deploy)."""
        extra: dict[str, Any] = {
            "ContentType": content_type,
            "CacheControl": cache_control,
            "Metadata": {SHA256_META: sha256},
        }
        if content_disposition is not None:
            extra["ContentDisposition"] = content_disposition
        conditions: dict[str, Any] = {}
        if if_match is not None:
            conditions["IfMatch"] = if_match
        elif if_none_match:
            conditions["IfNoneMatch"] = "*"
        try:
            with self._errors(f"upload {relpath}"):
                return self._put_retrying(relpath, body, extra, conditions, progress)
        except _Precondition:
            now = self.head(relpath)
            if now is not None and now.sha256 == sha256:
                return now.etag
            state = "was created" if if_none_match else "was changed"
            raise DeployConflictError(
                f"{self.target.key(relpath)} {state} by another deploy after this one read "
                f"the bucket, so this deploy stopped; {REBUILD_HINT}"
            ) from None

    def _put_retrying(
        self,
        relpath: str,
        body: bytes | Path,
        extra: dict[str, Any],
        conditions: dict[str, Any],
        progress: Callable[[int], None] | None,
    ) -> str:
        """Two conditional writes of one key at once: S3 may refuse both with 409 and
        asks for a retry; the retry's condition decides."""
        attempt = 0
        while True:
            try:
                return self._put_once(relpath, body, extra, conditions, progress)
            except _Conflict:
                if attempt >= _CONFLICT_RETRIES:
                    raise _Precondition() from None
                attempt += 1
                time.sleep(random.uniform(0.05, 0.3) * attempt)

    def _put_once(
        self,
        relpath: str,
        body: bytes | Path,
        extra: dict[str, Any],
        conditions: dict[str, Any],
        progress: Callable[[int], None] | None,
    ) -> str:
        """One upload; a refused condition is `_Precondition`, a 409 `_Conflict`."""
        key = self.target.key(relpath)
        size = len(body) if isinstance(body, bytes) else body.stat().st_size
        try:
            if isinstance(body, Path) and size >= self.options.multipart_threshold:
                return self._upload_multipart(relpath, body, extra, conditions, progress)
            etag = self._put_object(key, body, extra, conditions)
            if progress is not None:
                progress(size)
            return etag
        except boto3.exceptions.S3UploadFailedError as exc:
            if "PreconditionFailed" in str(exc) or "(412)" in str(exc):
                raise _Precondition() from None
            raise RemoteAccessError(f"{self.target}: upload of {relpath} failed: {exc}") from None
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) == "ConditionalRequestConflict" or _status(exc) == 409:
                raise _Conflict() from None
            if _status(exc) == 412 or _error_code(exc) == "PreconditionFailed":
                raise _Precondition() from None
            raise

    def _put_object(
        self, key: str, body: bytes | Path, extra: dict[str, Any], conditions: dict[str, Any]
    ) -> str:
        """One PutObject request (a file is streamed from disk); its ETag."""
        with ExitStack() as stack:
            payload = stack.enter_context(body.open("rb")) if isinstance(body, Path) else body
            response = self.client.put_object(
                Bucket=self.target.bucket, Key=key, Body=payload, **extra, **conditions
            )
        return response["ETag"]

    def _upload_multipart(
        self,
        relpath: str,
        body: Path,
        extra: dict[str, Any],
        conditions: dict[str, Any],
        progress: Callable[[int], None] | None,
    ) -> str:
        """A large file through s3transfer (its conditions added to CompleteMultipartUpload
        by `_add_condition`); the ETag is read back."""
        key = self.target.key(relpath)
        with self._lock:
            self._multipart_conditions[key] = conditions
        try:
            self.client.upload_file(
                str(body),
                self.target.bucket,
                key,
                ExtraArgs=extra,
                Config=self.transfer,
                Callback=progress,
            )
        finally:
            with self._lock:
                self._multipart_conditions.pop(key, None)
        head = self.head(relpath)
        assert head is not None
        return head.etag

    def delete(self, relpaths: list[str]) -> None:
        for start in range(0, len(relpaths), 1000):
            batch = relpaths[start : start + 1000]
            with self._errors("delete stale objects"):
                response = self.client.delete_objects(
                    Bucket=self.target.bucket,
                    Delete={"Objects": [{"Key": self.target.key(r)} for r in batch], "Quiet": True},
                )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise RemoteAccessError(
                    f"{self.target}: could not delete {len(errors)} object(s), e.g. "
                    f"{first.get('Key')}: {first.get('Code')}"
                )


class _Precondition(Exception):
    pass


class _Conflict(Exception):
    """409 ConditionalRequestConflict: retry the write."""


def invalidate_cloudfront(
    distribution_id: str,
    paths: list[str],
    options: ClientOptions,
    counter: RequestCounter | None = None,
) -> str:
    """Ask CloudFront to drop cached copies of `paths`; return the invalidation id."""
    try:
        session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
        client = session.client(
            "cloudfront", config=Config(retries={"mode": "standard", "max_attempts": 5})
        )
        if counter is not None:
            counter.attach(client)
        response = client.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": f"appshelf-{time.time_ns()}",
            },
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise describe_access_error(
            exc, S3Target("cloudfront", distribution_id), "create an invalidation"
        ) from None
    return str(response["Invalidation"]["Id"])


def invalidation_paths(target: S3Target, relpaths: list[str]) -> list[str]:
    """CloudFront paths for changed files, assuming the origin path is the bucket root.

    `dir/index.html` is also served as `dir/`. More than 15 paths become one wildcard under
    the prefix, which CloudFront bills as a single path.
    """
    base = f"/{target.prefix}/" if target.prefix else "/"
    paths: list[str] = []
    for relpath in relpaths:
        paths.append(base + quote(relpath))
        if relpath == "index.html" or relpath.endswith("/index.html"):
            paths.append(base + quote(relpath[: -len("index.html")]))
    return [base + "*"] if len(paths) > 15 else sorted(set(paths))
