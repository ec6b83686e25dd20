"""Device paths: every kernel runs on the model's device and agrees with the CPU.

Parametrised over ``cpu`` and ``cuda``; the ``cuda`` cases are skipped (with the reason) on
machines without CUDA, and run on a lent GPU. Random draws are made on the CPU with local
generators and moved to the model's device, so a seed gives the same starts on every device;
results are compared with the CPU's under a float32 tolerance (TF32 off).
"""

from __future__ import annotations

import pytest
import torch

from oodlib import apgd, atom, attacks, ibp, mahalanobis, models, odin, relu_theory, train

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA on this machine: the GPU path runs on a lent GPU")),
]
RTOL, ATOL = 1e-3, 1e-4  # float32, different reduction orders on the two devices


@pytest.fixture(autouse=True)
def _no_tf32():
    if torch.cuda.is_available():
        old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        yield
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
    else:
        yield


def _pair(arch: str, device: str, num_classes: int = 10):
    kw = {"width": 4} if arch == "small_cnn" else {}
    cpu = models.build(arch, num_classes=num_classes, seed=0, **kw)
    dev = models.build(arch, num_classes=num_classes, seed=0, **kw)
    return cpu.eval(), dev.to(device).eval()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a.detach().cpu().double(), b.detach().cpu().double(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_attacks_follow_the_model_device(device):
    cpu, dev = _pair("small_cnn", device)
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    runs = [attacks.pgd(m, x, attacks.log_max_confidence, eps=0.1, steps=3, step_size=0.02, restarts=2,
                        generator=torch.Generator().manual_seed(1)) for m in (cpu, dev)]
    assert runs[1].device.type == device and _close(*runs)
    res = [apgd.max_confidence_attack(m, x, 0.1, steps=4, generator=torch.Generator().manual_seed(2))
           for m in (cpu, dev)]
    assert _close(res[0].confidence, res[1].confidence)


@pytest.mark.parametrize("device", DEVICES)
def test_ibp_and_odin_follow_the_model_device(device):
    cpu, dev = _pair("small_cnn", device)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    assert _close(ibp.certified_confidence(cpu, x, 0.05), ibp.certified_confidence(dev, x, 0.05))
    grids = [odin.odin_grid(m, x, [1.0, 1000.0], [0.0, 0.002]) for m in (cpu, dev)]
    assert _close(*grids)


@pytest.mark.parametrize("device", DEVICES)
def test_training_mahalanobis_and_mining_follow_the_model_device(device):
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    y = torch.arange(64) % 10
    _, dev = _pair("small_cnn", device)
    train.fit(dev, x, y, epochs=1, batch_size=32, device=device)
    assert next(dev.parameters()).device.type == device
    head = mahalanobis.fit(dev, x, y, num_classes=10)
    assert mahalanobis.mahalanobis(dev, x[:4], head).shape == (4,)
    k1 = models.build("small_cnn", num_classes=11, seed=0, width=4).to(device)
    mined = atom.mine(k1, x, 32, 8, 0.25, generator=torch.Generator().manual_seed(5))
    assert len(mined.kept) == 8
    fresh_cpu, fresh_dev = _pair("small_cnn", device)
    res = [relu_theory.alpha_search(m, x[:3], threshold=0.9, alpha_max=1e6) for m in (fresh_cpu, fresh_dev)]
    assert torch.equal(res[0].reached, res[1].reached)
