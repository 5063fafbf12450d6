"""Fixtures of the scorer's tests (the helpers are in trace_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from trace_helpers import fixture_trace


@pytest.fixture
def real_trace() -> Path:
    """The small real trace of tests/fixtures/acorn_eval_91f29ff1."""
    return fixture_trace()
