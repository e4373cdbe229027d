"""The sandbox applies what the program declares: its snapshot is the program's output now."""

from __future__ import annotations

import json

from infra.under_mocks import SANDBOX_SNAPSHOT, sandbox_declarations


def test_the_sandbox_snapshot_is_what_the_program_declares_for_the_sandbox_stack() -> None:
    # Running the program takes ~20 s under the mocks, so the sandbox reads a snapshot; a change
    # to the program (a permission added to the DR role, say) must reach it.
    now = sandbox_declarations()
    snapshot = json.loads(SANDBOX_SNAPSHOT.read_text())
    for part in ("operator_policy", "replication_policies", "topology", "resources"):
        assert snapshot[part] == now[part], (
            f"{SANDBOX_SNAPSHOT.name}: the {part} differs from what infra/ declares for the sandbox "
            "stack; refresh it with `uv run python -m infra.under_mocks`"
        )
