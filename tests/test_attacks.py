"""Tests for oodlib.attacks: PGD moves, improves its objective, stays feasible, leaks nothing."""

from __future__ import annotations

import pytest
import torch

from oodlib import apgd, attacks, ball_attack, gmm, models

EPS = 0.3


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return models.build("small_cnn", num_classes=10, seed=0, width=4)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def _obj(model, x, objective=attacks.log_max_confidence, y=None):
    with torch.no_grad():
        return objective(model(x), y)


def test_objectives_shapes_and_values():
    logits = torch.tensor([[0.0, 0.0], [3.0, 1.0]])
    lmc = attacks.log_max_confidence(logits)
    mc = attacks.max_confidence(logits)
    assert lmc.shape == (2,) and torch.allclose(lmc.exp(), mc)
    assert mc[0].item() == pytest.approx(0.5)
    ce = attacks.cross_entropy_objective(logits, torch.tensor([0, 1]))
    assert ce[1].item() == pytest.approx(-torch.log_softmax(logits[1], 0)[1].item())
    with pytest.raises(ValueError, match="labels"):
        attacks.cross_entropy_objective(logits, None)


@pytest.mark.parametrize("objective", [attacks.log_max_confidence, attacks.max_confidence])
def test_pgd_moves_increases_and_stays_feasible(model, x, objective):
    g = torch.Generator().manual_seed(0)
    u = attacks.pgd(model, x, objective, eps=EPS, steps=10, step_size=0.05, generator=g)
    assert u.shape == x.shape and u.dtype == x.dtype
    moved = (u - x).flatten(1).abs().max(dim=1).values > 1e-3
    assert moved.float().mean() >= 0.75
    assert (u - x).abs().max() <= EPS + 1e-6
    assert u.min() >= -1e-6 and u.max() <= 1 + 1e-6
    before, after = _obj(model, x, objective), _obj(model, u, objective)
    assert (after >= before - 1e-6).all()  # never worse: the clean point is a candidate
    assert (after > before + 1e-4).float().mean() >= 0.75  # and usually strictly better


def test_pgd_adversarial_samples_increase_cross_entropy(model, x):
    y = torch.arange(len(x)) % 10
    u = attacks.pgd(model, x, attacks.cross_entropy_objective, eps=0.1, steps=5, step_size=0.03, y=y,
                    random_start=False)
    before = _obj(model, x, attacks.cross_entropy_objective, y)
    after = _obj(model, u, attacks.cross_entropy_objective, y)
    assert (after >= before - 1e-6).all() and (after > before).float().mean() >= 0.75
    assert (u - x).abs().max() <= 0.1 + 1e-6


def test_best_iterate_is_kept(model, x):
    """The returned point attains the maximum of the objective over every point PGD evaluated."""
    seen: list[torch.Tensor] = []

    def recording(logits, y=None):
        val = attacks.log_max_confidence(logits)
        seen.append(val.detach().clone())
        return val

    # a large step makes the iterates oscillate, so the last one is often not the best
    u = attacks.pgd(model, x, recording, eps=EPS, steps=6, step_size=0.3, restarts=2,
                    generator=torch.Generator().manual_seed(2))
    best_seen = torch.stack(seen).max(dim=0).values
    assert torch.allclose(_obj(model, u), best_seen, atol=1e-5)


def test_clean_point_wins_when_it_is_the_peak():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.full((3, 1, 2, 2), 0.5)
    with torch.no_grad():
        peak = net(x)[:, 0].clone()

    def peaked(logits, y=None):  # maximal (0) exactly at the clean point
        return -(logits[:, 0] - peak).pow(2)

    u = attacks.pgd(net, x, peaked, eps=0.3, steps=5, step_size=0.1, random_start=True,
                    generator=torch.Generator().manual_seed(0))
    assert torch.equal(u, x)


def test_restarts_at_least_as_good(model, x):
    kw = dict(eps=EPS, steps=3, step_size=0.05)
    one = attacks.pgd(model, x, attacks.log_max_confidence, restarts=1,
                      generator=torch.Generator().manual_seed(5), **kw)
    three = attacks.pgd(model, x, attacks.log_max_confidence, restarts=3,
                        generator=torch.Generator().manual_seed(5), **kw)
    # same generator seed: restart 1 of the 3-restart run is the 1-restart run
    assert (_obj(model, three, attacks.log_max_confidence)
            >= _obj(model, one, attacks.log_max_confidence) - 1e-6).all()


def test_mode_restored_and_no_param_grads(model, x):
    model.train()
    attacks.pgd(model, x[:4], attacks.log_max_confidence, eps=EPS, steps=2, step_size=0.05)
    assert model.training
    model.eval()
    attacks.adversarial_noise(model, x[:4], eps=EPS, steps=2, step_size=0.05)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


def test_pgd_runs_under_no_grad_and_eps_zero(model, x):
    with torch.no_grad():
        u = attacks.pgd(model, x[:4], attacks.log_max_confidence, eps=0.1, steps=2, step_size=0.05)
    assert (u - x[:4]).abs().max() <= 0.1 + 1e-6
    u0 = attacks.pgd(model, x[:4], attacks.log_max_confidence, eps=0.0, steps=2, step_size=0.05)
    assert torch.equal(u0, x[:4])


def test_generator_makes_it_deterministic(model, x):
    a = attacks.adversarial_noise(model, x[:4], 0.3, 3, 0.05, generator=torch.Generator().manual_seed(3))
    b = attacks.adversarial_noise(model, x[:4], 0.3, 3, 0.05, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eps=-0.1, steps=2, step_size=0.1), "eps"),
        (dict(eps=0.1, steps=0, step_size=0.1), "steps"),
        (dict(eps=0.1, steps=2, step_size=0.0), "step_size"),
        (dict(eps=0.1, steps=2, step_size=0.1, restarts=0), "restarts"),
        (dict(eps=0.1, steps=2, step_size=0.1, norm="l7"), "norm"),
    ],
)
def test_bad_arguments_raise(model, x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attacks.pgd(model, x[:2], attacks.log_max_confidence, **kwargs)


def test_bad_inputs_raise(model, x):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attacks.pgd(model, x[:2] * 3, attacks.log_max_confidence, eps=0.1, steps=1, step_size=0.1)
    with pytest.raises(ValueError, match="shape"):
        attacks.pgd(model, x[0], attacks.log_max_confidence, eps=0.1, steps=1, step_size=0.1)
    with pytest.raises(ValueError, match="one value per sample"):
        attacks.pgd(model, x[:2], lambda logits, y: logits.sum(), eps=0.1, steps=1, step_size=0.1)


# --- restarts in one batch (CUDA's default), checked against one after another on the CPU ------------


def test_restarts_batched_defaults_to_cuda_only_and_validates():
    assert attacks.restarts_batched(None, torch.device("cuda")) and not attacks.restarts_batched(None, "cpu")
    assert attacks.restarts_batched(True, torch.device("cpu")) is True
    with pytest.raises(ValueError, match="batch_restarts"):
        attacks.restarts_batched("yes", torch.device("cpu"))


def test_best_over_restarts_keeps_the_earlier_run_on_ties_and_never_takes_nan():
    best_x, best_val = torch.zeros(3, 2), torch.tensor([0.0, 1.0, float("nan")])
    xs = torch.arange(12.0).view(6, 2)  # run 0: rows 0-2, run 1: rows 3-5
    vals = torch.tensor([1.0, 2.0, 5.0, 1.0, 3.0, float("nan")])
    x, v = attacks.best_over_restarts(best_x, best_val, xs, vals, runs=2)
    assert v[:2].tolist() == [1.0, 3.0] and torch.isnan(v[2])  # nothing beats a NaN start: kept
    assert x[0].tolist() == xs[0].tolist() and x[1].tolist() == xs[4].tolist() and x[2].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="runs"):
        attacks.best_over_restarts(best_x, best_val, xs, vals, runs=3)


@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_restarts_in_one_batch_match_one_after_another(model, x, random_start):
    kw = dict(eps=0.3, steps=4, step_size=0.05, restarts=3, random_start=random_start)
    seq = attacks.pgd(model, x, attacks.log_max_confidence, generator=torch.Generator().manual_seed(1), **kw)
    bat = attacks.pgd(model, x, attacks.log_max_confidence, generator=torch.Generator().manual_seed(1),
                      batch_restarts=True, **kw)
    assert torch.allclose(_obj(model, seq), _obj(model, bat), atol=1e-5)
    assert (bat - x).abs().max() <= 0.3 + 1e-6


def test_apgd_and_ball_attack_restarts_in_one_batch_match_one_after_another():
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 5))
    x0 = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    a, b = (apgd.max_confidence_attack(net, x0, 0.1, steps=8, restarts=3, batch_restarts=flag,
                                       generator=torch.Generator().manual_seed(1)) for flag in (False, True))
    assert torch.allclose(a.confidence, b.confidence, atol=1e-5) and a.by_start.keys() == b.by_start.keys()
    met = gmm.Metric(64).fit(torch.rand(300, 64, generator=torch.Generator().manual_seed(4)))
    c, d = (ball_attack.attack_in_ball(net, met, x0, 3.0, steps=10, restarts=3, show_progress=False,
                                       generator=torch.Generator().manual_seed(2), batch_restarts=flag)
            for flag in (False, True))
    assert torch.allclose(c.confidence, d.confidence, atol=1e-6) and (d.distance <= 3.0).all()
