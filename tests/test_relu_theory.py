"""Tests for oodlib.relu_theory (Hein et al. 2019): affine form, linear regions, α-scaling, RBF nets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian

from oodlib import models, relu_theory

# --------------------------------------------------------------------------- affine form / linear regions


def _check_affine(net: nn.Module, x: torch.Tensor) -> None:
    V, a = relu_theory.affine_form(net, x)
    with torch.no_grad():
        fx = net(x)[0].double()
    J = jacobian(lambda z: net(z)[0], x).reshape(fx.numel(), -1).double()
    assert V.shape == J.shape and a.shape == fx.shape
    assert torch.allclose(V, J, atol=1e-5, rtol=1e-4)
    assert torch.allclose(V @ x.flatten().double() + a, fx, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_affine_form_matches_autograd_on_mlps(seed):
    g = torch.Generator().manual_seed(seed)
    _check_affine(models.build("toy_mlp", num_classes=3, seed=seed), torch.randn(1, 2, generator=g))
    _check_affine(models.build("mlp", num_classes=10, seed=seed, hidden=32),
                  torch.rand(1, 1, 28, 28, generator=g))


def test_affine_form_matches_autograd_on_small_cnn_with_maxpool():
    net = models.build("small_cnn", num_classes=10, seed=0, width=4)
    _check_affine(net, torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0)))


def _resnet_with_running_stats(seed: int = 0) -> nn.Module:
    net = models.build("resnet18", num_classes=10, seed=seed)
    with torch.no_grad():  # non-trivial batch-norm statistics and affine parameters
        g = torch.Generator().manual_seed(seed)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return net.eval()


def test_affine_form_reads_a_resnet_with_batch_norm_and_residual_blocks():
    # full's Fashion-MNIST classifier (Meinke & Hein: a ResNet-18): still piecewise affine in eval mode
    # (12x12 inputs: the same layers, d = 144 unit vectors pushed through instead of 784)
    net = _resnet_with_running_stats()
    _check_affine(net, torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="eval mode"):
        relu_theory.affine_form(net.train(), torch.rand(1, 1, 12, 12))


def test_last_layer_off_on_a_resnet():
    net = _resnet_with_running_stats()
    x = torch.rand(3, 1, 28, 28)
    assert not relu_theory.last_layer_off(net, x).any()
    with torch.no_grad():  # the last block's main branch pushed far below zero: its final ReLU is off
        block = net[6][-1]
        block.bn2.weight.zero_()
        block.bn2.bias.fill_(-1e6)
        assert relu_theory.last_layer_off(net, x).all()
        assert torch.equal(net(x), net[-1].bias.expand(3, -1))  # the output is the last layer's bias


def test_affine_form_accepts_a_vector_and_rejects_batches_and_layers():
    net = models.build("toy_mlp", num_classes=2, seed=0)
    V, a = relu_theory.affine_form(net, torch.tensor([0.3, -0.2]))
    assert V.shape == (2, 2) and a.shape == (2,)
    with pytest.raises(ValueError, match="batch of one"):
        relu_theory.affine_form(net, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="Tanh"):
        relu_theory.affine_form(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="finite"):
        relu_theory.affine_form(net, torch.tensor([[float("nan"), 0.0]]))


def test_linear_region_contains_x_and_matches_activation_patterns():
    net = models.build("toy_mlp", num_classes=3, hidden=16, depth=3, seed=0)
    x = torch.tensor([[0.4, -0.7]])
    A, b = relu_theory.linear_region(net, x)
    assert A.shape == (48, 2) and b.shape == (48,)
    assert (A @ x[0].double() <= b + 1e-9).all()
    # nearby points: inside the polytope <=> same activation pattern as x
    g = torch.Generator().manual_seed(0)
    z = x + torch.randn(400, 2, generator=g) * torch.logspace(-4, 0, 400)[:, None]
    inside = (z.double() @ A.T <= b).all(dim=1)
    same = (relu_theory.activation_pattern(net, z) == relu_theory.activation_pattern(net, x)).all(dim=1)
    assert torch.equal(inside, same)
    assert inside.sum() >= 20 and (~inside).sum() >= 20  # both cases are exercised
    # and on the region the network is the affine map of affine_form
    V, a = relu_theory.affine_form(net, x)
    with torch.no_grad():
        fz = net(z[inside]).double()
    assert torch.allclose(z[inside].double() @ V.T + a, fz, atol=1e-5)


def test_linear_region_rejects_cnns():
    with pytest.raises(ValueError, match="Conv2d"):
        relu_theory.linear_region(models.build("small_cnn", width=4), torch.rand(1, 1, 28, 28))


# --------------------------------------------------------------------------- α-scaling


def _two_class_linear(w: list[float], bias_diff: float) -> nn.Sequential:
    """f(z) = (w·z + bias_diff, 0): confidence along αx is sigmoid(|α w·x + bias_diff|)."""
    lin = nn.Linear(len(w), 2)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
        lin.weight[0] = torch.tensor(w)
        lin.bias[0] = bias_diff
    return nn.Sequential(lin)


def test_alpha_search_matches_closed_form():
    t, tol = 0.999, 1e-3
    logit_t = math.log(t / (1 - t))  # conf >= t  <=>  |Δ| >= logit(t)
    beta = -1.0
    net = _two_class_linear([1.0, 0.0], beta)
    c = torch.tensor([0.2, 1.5, 3.0, 30.0, 50.0, 1e-3])  # w·x for each direction
    x = torch.stack([c, torch.zeros_like(c)], dim=1)
    res = relu_theory.alpha_search(net, x, threshold=t, alpha_max=1e6, tol=tol)
    exact = (logit_t - beta) / c.double()  # Δ(α) = α c + β is increasing; crosses +logit_t here
    assert res.reached.all()
    expected = exact.clamp_min(1.0)  # α is searched from 1 on
    assert (res.alpha >= expected * (1 - 1e-6)).all()
    assert (res.alpha <= expected / (1 - tol) * (1 + 1e-6)).all()
    assert (res.confidence >= t - 1e-7).all()
    assert res.alpha[c > (logit_t - beta)].eq(1.0).all()  # already confident at α = 1
    bracketed = res.alpha > 1
    assert (res.lower[bracketed] < exact[bracketed]).all()
    assert ((res.alpha - res.lower)[bracketed] <= tol * res.alpha[bracketed] + 1e-12).all()
    assert res.label.eq(0).all()
    assert res.fraction_reached == 1.0


def test_alpha_search_reports_not_reached():
    net = _two_class_linear([1.0, -1.0], 0.0)
    x = torch.tensor([[0.5, 0.5], [0.3, 0.3], [1.0, 0.0]])  # logits equal along the first two rays
    res = relu_theory.alpha_search(net, x, alpha_max=1e4)
    assert res.reached.tolist() == [False, False, True]
    assert math.isinf(res.alpha[0]) and math.isinf(res.alpha[1]) and math.isfinite(res.alpha[2])
    assert torch.allclose(res.confidence[:2].double(), torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert res.lower[0] == 1e4
    assert math.isinf(res.median())  # most points unreached: the median is inf
    assert res.fraction_reached == pytest.approx(1 / 3)


def test_alpha_search_on_a_non_monotone_ray_returns_the_bracketed_crossing():
    """A bump of high confidence at α∈(1.2, 1.4) lies between grid points 1 and 2; the search
    returns the crossing in the first doubling interval whose end reaches the threshold."""
    t = 0.999
    L = math.log(t / (1 - t))
    h = 20 * L  # bump height 0.1 h = 2 L: confident on the bump
    hidden = nn.Linear(1, 4)
    out = nn.Linear(4, 2)
    with torch.no_grad():
        hidden.weight.fill_(1.0)
        hidden.bias.copy_(torch.tensor([-1.2, -1.3, -1.4, -10.0]))
        out.weight.zero_()
        out.bias.zero_()
        out.weight[0] = torch.tensor([h, -2 * h, h, 1.0])
    net = nn.Sequential(hidden, nn.ReLU(), out)
    x = torch.ones(1, 1)
    assert relu_theory.confidence_along_ray(net, x, [1.3])[0, 0] > t  # the bump is there
    res = relu_theory.alpha_search(net, x, threshold=t, tol=1e-4)
    assert res.reached.all()
    assert res.alpha[0].item() == pytest.approx(10 + L, rel=2e-4)  # not 1.2..1.4


def test_alpha_search_validates():
    net = _two_class_linear([1.0, 0.0], 0.0)
    x = torch.rand(2, 2)
    for kwargs, match in [
        (dict(threshold=1.5), "threshold"),
        (dict(alpha_max=0.5), "alpha_max"),
        (dict(tol=0.0), "tol"),
    ]:
        with pytest.raises(ValueError, match=match):
            relu_theory.alpha_search(net, x, **kwargs)
    with pytest.raises(ValueError, match="finite"):
        relu_theory.alpha_search(net, torch.tensor([[float("inf"), 0.0]]))
    with pytest.raises(ValueError, match="batch"):
        relu_theory.alpha_search(net, torch.rand(2))


def test_alpha_search_on_small_cnn_with_uniform_noise():
    """Theorem 3.1 on a real ReLU CNN: almost every noise direction reaches 99.9 %."""
    net = models.build("small_cnn", seed=0, width=4)
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    res = relu_theory.alpha_search(net, x, alpha_max=1e8)
    assert res.reached.all()
    conf = relu_theory.confidence_along_ray(net, x, res.alpha.tolist())
    assert (conf.diagonal() >= 0.999 - 1e-6).all()
    assert net.training  # mode restored (build returns a module in train mode)


def test_overconfident_fraction():
    net = _two_class_linear([10.0, 0.0], -5.0)
    x = torch.tensor([[0.2, 0.0], [0.9, 0.0], [0.0, 0.7]])
    # α=1: Δ = 10 x0 - 5 = -3, 4, -5 -> conf sigmoid(3)=.953, sigmoid(4)=.982, sigmoid(5)=.993
    assert relu_theory.overconfident_fraction(net, x, 1.0, threshold=0.96) == pytest.approx(2 / 3)
    # α=inf: clip(αx) -> 1[x > 0]: rows (1,0), (1,0), (0,1): Δ = 5, 5, -5 -> all > 0.99
    assert relu_theory.overconfident_fraction(net, x, torch.tensor([math.inf] * 3), threshold=0.99) == 1.0
    # per-point α, clipped to the box: α=3 on row 0 -> x0 = 0.6 -> Δ = 1 -> conf .73
    assert relu_theory.overconfident_fraction(net, x, torch.tensor([3.0, 1.0, 1.0]), threshold=0.95) == \
        pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="alpha"):
        relu_theory.overconfident_fraction(net, x, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="threshold"):
        relu_theory.overconfident_fraction(net, x, 1.0, threshold=1.0)


# --------------------------------------------------------------------------- RBF networks (Theorem E.1)


@pytest.fixture()
def rbf() -> relu_theory.RBFNet:
    g = torch.Generator().manual_seed(0)
    net = relu_theory.RBFNet(torch.rand(20, 5, generator=g), num_classes=4, gamma=2.0)
    with torch.no_grad():
        net.coef.copy_(3 * torch.randn(4, 20, generator=g))
    return net


def test_rbf_forward_is_the_formula(rbf):
    x = torch.rand(3, 5)
    d2 = ((x[:, None, :] - rbf.centres[None]) ** 2).sum(-1)
    expected = torch.exp(-2.0 * d2) @ rbf.coef.T
    assert torch.allclose(rbf(x), expected, atol=1e-5)


def test_rbf_confidence_bound_holds_at_random_far_points(rbf):
    g = torch.Generator().manual_seed(1)
    direction = torch.randn(300, 5, generator=g)
    direction = direction / direction.norm(dim=1, keepdim=True)
    radius = torch.linspace(0.5, 4.0, 300)[:, None]
    x = 0.5 + radius * direction
    eps = relu_theory.rbf_confidence_bound(rbf, x)
    with torch.no_grad():
        p = torch.softmax(rbf(x).double(), dim=1)
    K = 4
    assert ((p - 1 / K).abs() <= eps[:, None] + 1e-9).all()
    assert eps[-50:].max() < 1e-3  # far away: confidence -> 1/K
    assert eps[:20].max() > 1e-2  # and the bound does depend on the distance


def test_rbf_far_radius_is_theorem_e1(rbf):
    eps = 0.01
    r = relu_theory.rbf_far_radius(rbf, eps)
    coef = rbf.coef.detach().double()
    alpha = max(float((coef[i] - coef[j]).abs().sum()) for i in range(4) for j in range(4))
    assert r ** 2 == pytest.approx(math.log(alpha / math.log1p(4 * eps)) / 2.0)
    # at r_min = r the point-wise bound ε(x) = expm1(α exp(-γ r_min²)) / K equals eps
    assert math.expm1(alpha * math.exp(-2.0 * r ** 2)) / 4 == pytest.approx(eps)
    # points with r_min >= r satisfy the eps bound
    g = torch.Generator().manual_seed(2)
    far = 0.5 + (r + 2.0) * torch.nn.functional.normalize(torch.randn(100, 5, generator=g), dim=1)
    rmin = torch.cdist(far, rbf.centres).min(dim=1).values
    assert (rmin >= r).all()
    assert (relu_theory.rbf_confidence_bound(rbf, far) <= eps + 1e-12).all()


def test_rbf_validates(rbf):
    with pytest.raises(ValueError, match="gamma"):
        relu_theory.RBFNet(torch.rand(3, 2), num_classes=2, gamma=0.0)
    with pytest.raises(ValueError, match="features"):
        relu_theory.rbf_confidence_bound(rbf, torch.rand(2, 3))
    with pytest.raises(ValueError, match="RBFNet"):
        relu_theory.rbf_confidence_bound(nn.Linear(5, 2), torch.rand(2, 5))
    with pytest.raises(ValueError, match="eps"):
        relu_theory.rbf_far_radius(rbf, 0.0)
    net = relu_theory.RBFNet(8, num_classes=3, in_features=2, generator=torch.Generator().manual_seed(0))
    assert net(torch.rand(5, 2)).shape == (5, 3)


def test_last_layer_off_detects_a_constant_output_region():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        net[0].bias.zero_()
    x = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -2.0]])
    off = relu_theory.last_layer_off(net, x)
    assert off.tolist() == [False, True, False]
    # where it is off the output is the bias at every scale: Thm 3.1's limit does not apply
    with torch.no_grad():
        assert torch.equal(net(1e6 * x[1:2]), net[2].bias[None])
    with pytest.raises(ValueError, match="ReLU"):
        relu_theory.last_layer_off(torch.nn.Sequential(torch.nn.Linear(2, 2)), x)
