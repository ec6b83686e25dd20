"""Shared fixtures: a fresh zoo cache per test session and a tiny profile."""

from __future__ import annotations

import pytest

from oodlib import profiles


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
