"""Shared fixtures: a fresh zoo cache per test session and a tiny profile."""

from __future__ import annotations

import os
import shutil

import pytest

from oodlib import profiles


def pytest_addoption(parser):
    parser.addoption("--site", action="store_true", default=False,
                     help="also build the executed book and check its pages (slow; make test passes it)")


def pytest_configure(config):
    config.addinivalue_line("markers", "site: builds the book, or opens it or Lab in a browser (--site)")


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
    return profiles.CI.replace(name="tiny",
                               train={"train_size": 512, "epochs": 1, "batch_size": 64, "aux_size": 256},
                               eval={"test_size": 256, "ood_size": 64, "attack_size": 16})


# Debian's chromium as this machine kind's probe starts it: no sandbox as root, and none of the
# background traffic that a closed network refuses (those refusals would read as console errors)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Playwright (site and Lab tests), or a skip saying why."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    path = os.environ.get("OODLIB_BROWSER") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no Chromium: install Debian's chromium (make install does, as root) or set "
                    "OODLIB_BROWSER to a Chromium binary")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
