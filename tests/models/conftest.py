"""Fixtures for the model tests: the test factories on sys.path, and no timm downloads."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def factories(monkeypatch):
    """``gse_test_factories`` importable (its folder on sys.path); returns the module."""
    monkeypatch.syspath_prepend(str(HERE))
    import gse_test_factories

    return gse_test_factories


def _refuse(*args, **kwargs):
    raise AssertionError("a test tried to download weights")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt of timm to fetch pretrained weights fails the test (torchvision's are refused by its own tests)."""
    try:
        import timm.models._builder as builder
        import timm.models._hub as hub
    except ImportError:
        return
    for module, name in ((builder, "load_pretrained"), (builder, "load_custom_pretrained"),
                         (builder, "download_cached_file"), (hub, "download_cached_file"), (hub, "hf_hub_download")):
        monkeypatch.setattr(module, name, _refuse)
