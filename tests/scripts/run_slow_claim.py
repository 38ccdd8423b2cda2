"""`sandbox` with the test claim `slow` (tests/scripts/slow_claim.py) registered: argv as for sandbox."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from theory import cli  # noqa: E402
from theory.harness import registry  # noqa: E402

registry.CLAIMS["slow"] = registry.ClaimSpec("slow", "Adam lowers a noisy quadratic loss.", "none", "slow_claim")
cli.entry(sys.argv[1:])
