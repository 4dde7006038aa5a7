"""A few seeded runs of scripts/kill_harness.py's deploy half against the session's
SeaweedFS: `appshelf deploy` SIGKILLed mid-upload, then the bucket checked over HTTP and
the next deploy run to completion."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from deploy.conftest import SeaweedS3

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import kill_harness

pytestmark = pytest.mark.s3


def test_killed_deploys_leave_a_readable_bucket_and_the_next_deploy_repairs_it(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    server = kill_harness.S3Server(seaweed.endpoint, seaweed.client)
    outcomes = kill_harness.run_deploy_kills(tmp_path, server, runs=3, seed=11)
    assert [o.problems for o in outcomes] == [[]] * 3, kill_harness.summary(outcomes)
    event_kills = [o for o in outcomes if o.strategy.startswith("event")]
    # An operation-count kill can outlast a run whose operation count differs from its
    # probe's (uploads in threads): at least one must land mid-write.
    assert len(event_kills) == 2 and any(o.landed == "mid-write" for o in event_kills)
