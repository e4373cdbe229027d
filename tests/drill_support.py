"""Shared by the drill tests: the one known finding a drill reports that is not the drill's bug."""

from __future__ import annotations

from typing import Any

import pytest

FAILBACK_GAP = "protection gap in the failback runbook"


def xfail_on_known_failback_gap(doc: dict[str, Any]) -> None:
    """Expected failure when everything lost after failback is the failback runbook's gap.

    The failback switches writes to the primary (`switch`) before it restores replication to the
    standby (`protect`); a write acknowledged in between is never replicated (the sandbox's
    replicator, like S3, skips objects written before a rule exists, with a 1 s grace), so the
    drill rightly finds it missing in the standby. Whether a canary lands in that window depends
    on timing. Any other loss after failback fails the test.
    """
    if doc["lost_after_failback"] and any(FAILBACK_GAP in note for note in doc["notes"]):
        pytest.xfail(
            f"{doc['lost_after_failback']} write(s) fell in the failback runbook's switch -> protect "
            f"window: {doc['data']['lost_after_failback_detail']}"
        )
