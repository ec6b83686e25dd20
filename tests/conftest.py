"""Shared fixtures: a fresh zoo cache per test session and a tiny profile."""

from __future__ import annotations

import pytest

from oodlib import profiles


def pytest_addoption(parser):
    parser.addoption("--site", action="store_true", default=False,
                     help="also build the executed book and check its pages (slow; make test passes it)")


def pytest_configure(config):
    config.addinivalue_line("markers", "site: builds the executed book (needs --site)")


def pytest_collection_modifyitems(config, items):
    """Site tests need --site and run last (the notebooks have filled the zoo by then)."""
    skip = pytest.mark.skip(reason="builds the executed book; run with --site (make test does)")
    site = [i for i in items if "site" in i.keywords]
    for item in site:
        if not config.getoption("--site"):
            item.add_marker(skip)
    items[:] = [i for i in items if "site" not in i.keywords] + site


@pytest.fixture()
def zoo_cache(tmp_path, monkeypatch):
    """Point the zoo at an empty folder for one test."""
    monkeypatch.setenv("OODLIB_CACHE", str(tmp_path / "zoo"))
    return tmp_path / "zoo"


@pytest.fixture()
def tiny_profile():
    """A profile small enough to train in a second (not for results)."""
    return profiles.CI.replace(name="tiny", train_size=512, test_size=256, epochs=1, batch_size=64,
                               aux_size=256, ood_size=64, attack_size=16)
