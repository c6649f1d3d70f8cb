"""Attack-like traffic for the bundled signatures (filled in next)."""

SCENARIOS: dict = {}
