"""tests/stream: make the capture script importable by the tests next to it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
