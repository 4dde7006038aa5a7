"""A few seeded runs of scripts/kill_harness.py's build half, as CI runs them.

`appshelf build` is SIGKILLed at an operation count (even runs: exactly reproducible) or
after a delay (odd runs); the output must verify, as the old or the new snapshot, after
every kill (a commit with its journal included), and the next build must finish and
equal a clean cold build.
The full count (100 runs and more) is `scripts/kill_harness.py --runs 100 --seed 1`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import kill_harness


def test_killed_builds_leave_old_or_new_and_the_next_build_is_clean(tmp_path: Path) -> None:
    outcomes = kill_harness.run_build_kills(tmp_path, runs=5, seed=11)
    assert [o.problems for o in outcomes] == [[]] * 5, kill_harness.summary(outcomes)
    event_kills = [o for o in outcomes if o.strategy.startswith("event")]
    # A kill at an operation count within the probe's count always lands mid-write.
    assert len(event_kills) == 3 and {o.landed for o in event_kills} == {"mid-write"}
    assert {o.state for o in outcomes} <= {
        "old",
        "new",
        "torn-journal-snapshot-old",
        "torn-journal-snapshot-new",
    }
