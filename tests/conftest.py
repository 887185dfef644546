"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder (``$GSE_EXPLAIN_SHARED_DATA``, default ``<repo>/../shared/data``).

    Tests that need real weights or images are skipped, not failed, on a
    machine that does not have the folder.
    """
    path = Path(os.environ.get("GSE_EXPLAIN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).expanduser()
    if not path.is_dir():
        if os.environ.get("GSE_EXPLAIN_REQUIRE_SHARED_DATA"):  # CI: a missing data folder is a failure, not a skip
            pytest.fail(f"shared data folder '{path}' not found and GSE_EXPLAIN_REQUIRE_SHARED_DATA is set")
        pytest.skip(f"shared data folder '{path}' not found: set GSE_EXPLAIN_SHARED_DATA to the shared data folder")
    return path


@pytest.fixture
def one_thread():
    """Run torch on one thread: small batches gain nothing from more, and under CPU contention two
    OpenMP threads spin-wait and make tiny attacks 10-100x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
