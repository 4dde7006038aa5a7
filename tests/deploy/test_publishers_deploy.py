"""Publishers on the `build --deploy` path, against SeaweedFS (the bucket is the only
memory): a signed version deploys with its statement and publishers.json, the client
reading the bucket checks both signatures, and a takeover by editing app.toml is refused
before anything is uploaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from appshelf.client import RegistryClient, trusted_keys
from appshelf.errors import PublisherMissingError
from publisher_helpers import declare, new_key, new_version, set_owners, sign

from .test_log_deploy import Deployed, deployed  # noqa: F401 (the fixture)

pytestmark = pytest.mark.s3
APP, NEW = "kv-store", "1.2.0"


def test_signed_version_deploys_and_takeover_is_refused(
    deployed: Deployed,  # noqa: F811
    tmp_path: Path,
) -> None:
    alice = new_key(tmp_path, "alice")
    mallory = new_key(tmp_path, "mallory")
    declare(deployed.source, "alice", [(alice[1], "active")])
    declare(deployed.source, "mallory", [(mallory[1], "active")])
    set_owners(deployed.source, APP, ["alice"])
    folder = new_version(deployed.source, APP, NEW, 'provides = ["storage.kv"]\n')
    code, out = sign(folder, deployed.base, "alice", alice[0])
    assert code == 0, out
    result, _ = deployed.build()
    assert result.exit_code == 0, result.output
    objects = deployed.objects()
    assert f"r/apps/{APP}/{NEW}/statement.json" in objects and "r/publishers.json" in objects

    client = RegistryClient(
        deployed.base,
        trusted_keys(allow_dev_key=True),
        allow_dev_key=True,
        state_dir=tmp_path / "s",
        require_publisher=True,
    )
    with client:
        trusted = client.manifest(APP, NEW)
        assert trusted.publisher is not None
        download = client.download_manifest(trusted, tmp_path / "dl")
        assert download.path.read_bytes() == (folder / f"{APP}-{NEW}.tar.gz").read_bytes()
        with pytest.raises(PublisherMissingError):
            client.manifest(APP, "1.1.1")

    set_owners(deployed.source, APP, ["mallory"])
    deployed.refused("differ from kv-store's owners in the release log ['alice']", "(a takeover)")
