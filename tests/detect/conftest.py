"""Fixtures for detect/ tests (helpers live in detect_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from detect_helpers import Detect


@pytest.fixture
def detect(tmp_path: Path) -> Detect:
    return Detect(tmp_path)
