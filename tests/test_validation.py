"""oodlib.validation: one scalar check, one message style."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oodlib import evaluate, mahalanobis, models, noise, runtime, scores, validation


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.25), np.float64(0.75), np.int64(1)])
def test_check_number_accepts_python_and_numpy_numbers(value):
    assert validation.check_number(value, "eps", low=0, high=1) == pytest.approx(float(value))
    assert isinstance(validation.check_number(value, "eps"), float)


@pytest.mark.parametrize("value", [True, "0.1", None, [0.1], math.nan, math.inf, -math.inf, np.nan,
                                   torch.tensor(0.1)])
def test_check_number_rejects_non_numbers_and_non_finite(value):
    with pytest.raises(ValueError, match=r"expected eps as a finite number, got "):
        validation.check_number(value, "eps")


def test_check_number_bounds_and_messages():
    with pytest.raises(ValueError, match=r"expected eps as a finite number in \[0, 1\], got -0\.1"):
        validation.check_number(-0.1, "eps", low=0, high=1)
    with pytest.raises(ValueError, match=r"expected T as a finite number > 0, got 0"):
        validation.check_number(0, "T", low=0, low_open=True)
    with pytest.raises(ValueError, match=r"expected q as a finite number in \[0, 1\), got 1"):
        validation.check_number(1, "q", low=0, high=1, high_open=True)
    assert validation.check_number(math.inf, "T", low=0, low_open=True, allow_inf=True) == math.inf
    with pytest.raises(ValueError, match="an integer"):
        validation.check_number(2.5, "steps", integer=True)
    assert validation.check_number(3.0, "steps", integer=True) == 3.0


def test_integer_seed_and_shape_checks():
    assert validation.check_int(np.int32(4), "n", low=1) == 4
    for bad in (True, 1.0, -1):
        with pytest.raises(ValueError, match="expected seed as an integer >= 0"):
            validation.check_seed(bad)
    assert validation.check_shape((1, 28, 28)) == (1, 28, 28)
    with pytest.raises(ValueError, match=r"expected shape as \(C, H, W\)"):
        validation.check_shape((28, 28))
    with pytest.raises(ValueError, match="positive integer"):
        validation.check_positive_int(0, "n")


def test_check_images_and_scores_name_what_was_received():
    expected = r"expected x as a float tensor of shape \(N, C, H, W\) in \[0, 1\].*max 255"
    with pytest.raises(ValueError, match=expected):
        validation.check_images(torch.full((2, 1, 28, 28), 255.0))
    with pytest.raises(ValueError, match="1 NaN/inf"):
        validation.check_scores([0.1, float("nan")])


def test_runtime_helpers():
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train()
    with runtime.eval_mode(m):
        assert not m.training
    assert m.training  # restored
    x = torch.randn(3, 2)
    val, g = runtime.input_gradient(lambda u: m[0](u).pow(2).sum(1), x)
    w, b = m[0].weight.detach(), m[0].bias.detach()
    assert torch.allclose(val, (x @ w.T + b).pow(2).sum(1))
    assert torch.allclose(g, 2 * (x @ w.T + b) @ w, atol=1e-6) and m[0].weight.grad is None
    with pytest.raises(ValueError, match=r"return shape \(3,\)"):
        runtime.input_gradient(lambda u: u.sum(), x)
    assert runtime.derive_seed(0, "a") != runtime.derive_seed(0, "b")
    assert runtime.derive_seed(3, "a") == runtime.derive_seed(3, "a")
    assert torch.equal(torch.rand(3, generator=runtime.torch_generator(1)),
                       torch.rand(3, generator=runtime.torch_generator(1)))


def test_standard_layout_copies_only_what_is_not_nchw():
    x = torch.rand(4, 3, 5, 5)
    assert runtime.standard_layout(x) is x
    for odd in (x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),  # channels-last colour
                x[:, :1].permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),  # grey: contiguous() says yes
                x.transpose(2, 3)):  # SVHN's order
        out = runtime.standard_layout(odd)
        assert out.stride() == torch.empty(odd.shape).stride() and torch.equal(out, odd)


def test_paper_vs_ours_formats_and_marks_missing_paper_values():
    df = evaluate.paper_vs_ours([("AUROC", "paper: MNIST; ours: FMNIST", 0.98765, 0.91234),
                                 ("MMC", "ours only", None, float("nan")), ("note", "text", "n/a", "x")])
    assert list(df.columns) == ["quantity", "setting", "paper", "ours"]
    assert df.paper.tolist() == ["0.9877", "—", "n/a"] and df.ours.tolist() == ["0.9123", "—", "x"]


@pytest.mark.parametrize("call", [
    lambda m, x: scores.energy(m, x, temperature=math.inf),
    lambda m, x: scores.energy(m, x, temperature=np.float32("nan")),
    lambda m, x: noise.gaussian_noise(4, std=math.inf),
    lambda m, x: noise.gaussian_noise(4, mean=math.nan),
    lambda m, x: mahalanobis.mahalanobis(m, x, eps=math.nan),
])
def test_non_finite_parameters_are_refused_where_they_used_to_pass(call):
    model = models.build("mlp", hidden=8)
    with pytest.raises(ValueError, match="expected .* as a finite number"):
        call(model, torch.rand(2, 1, 28, 28))


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "record.json"
    runtime.atomic_write(target, "old")
    runtime.atomic_write(target, b"new")
    assert target.read_text() == "new"
    runtime.atomic_write(target, lambda p: p.write_text("written by a function"))
    assert target.read_text() == "written by a function"

    def fails(p):
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        runtime.atomic_write(target, fails)
    assert target.read_text() == "written by a function"  # untouched, and no temporary file left behind
    assert sorted(q.name for q in tmp_path.iterdir()) == ["record.json"]
    with pytest.raises(ValueError, match="expected content as str, bytes or a function"):
        runtime.atomic_write(target, 3)


def test_stable_hash_is_order_free_and_strict_on_request():
    a = runtime.stable_hash({"b": 1, "a": [1.5, "x"]})
    assert a == runtime.stable_hash({"a": [1.5, "x"], "b": 1}) and len(a) == 12
    assert a != runtime.stable_hash({"b": 2, "a": [1.5, "x"]})
    odd = object()  # not JSON: written as str(odd), unless strict
    assert runtime.stable_hash({"p": odd}) == runtime.stable_hash({"p": str(odd)})
    with pytest.raises(ValueError, match="plain-JSON"):
        runtime.stable_hash({"x": float("nan")}, strict=True)
