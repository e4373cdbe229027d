"""The policy pack entrypoint: `pulumi preview --policy-pack policy` (from infra/).

All rules are mandatory; their logic is in rules.py, the pulumi-policy glue in pack.py.
"""

import sys
from pathlib import Path

# Run by the Pulumi CLI from this directory; the repository root makes `infra.*` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import EnforcementLevel, PolicyPack

from infra.policy.pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
