"""Fixtures for the tuner's tests: one CPU thread (the model and data fixtures live in tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _single_threaded(one_thread):
    """Every tuner test runs with one torch thread (see ``one_thread`` in tests/conftest.py)."""
