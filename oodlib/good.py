"""GOOD: guaranteed OOD detection by interval bound propagation (Bitterwolf, Meinke & Hein 2020).

* **GOOD and quantile GOOD (eq. 9 / 10).** The training plug-in ``"good"``: cross-entropy on the
  in-distribution plus ``κ`` times the CUB loss (eq. 8, :func:`oodlib.ibp.cub_loss`) at radius ε
  on the fraction ``q`` of each out-batch with the *lowest* bound loss and the CUB loss at ε = 0
  on the rest; ``q = 1`` is GOOD_100 (eq. 9), ``q = 0`` is GOOD_0 (an OE/CEDA-like model). ε and
  κ ramp up linearly (:func:`ramp`; §4.1, the paper's exact schedule is in its Appendix D).
* **Evaluation (§5).** The AUC, the adversarial AUC (AAUC: the worst confidence an APGD attack
  finds in the ε-ball) and the guaranteed AUC (GAUC: IBP's certified upper bound, eq. 6) of
  Table 1 are the threats :data:`oodlib.evaluate.GOOD_THREATS` of the book's one evaluation,
  :func:`oodlib.evaluate.threat_table`, with :func:`oodlib.detectors.good_detector`.

The bounds themselves (eq. 3–8) are in :mod:`oodlib.ibp`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import train
from .ibp import cub_loss, cub_loss_clean, logit_diff_upper
from .profiles import Profile
from .validation import check_number

# --------------------------------------------------------------------------- GOOD training (eq. 9 / 10)


def ramp(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear ramp-up factor in [0, 1]: 0 before ``start``, 1 after ``end`` (fractions of training)."""
    if total_steps <= 0:
        raise ValueError(f"expected total_steps > 0, got {total_steps!r}")
    frac = step / total_steps
    if end <= start:
        return 1.0 if frac >= start else 0.0
    return float(min(1.0, max(0.0, (frac - start) / (end - start))))


class GOOD(train.Method):
    """Guaranteed OOD detection training (eq. 9) and quantile GOOD_Q (eq. 10).

    ``loss = CE(f(x_in), y) + κ_t/M [ Σ_{j <= ⌊qM⌋} L_CUB(x_πj; ε_t) + Σ_{j > ⌊qM⌋} L_CUB(x_πj; 0) ]``

    where ``π`` sorts the out-batch (``M = ceil(lam·B)`` auxiliary images) by
    ``L_CUB(x; ε_t)`` ascending, so the bound loss goes to the *easiest* q-fraction.
    ``ε_t = r_t ε`` and ``κ_t = r_t κ`` with the linear ramp ``r_t`` =
    :func:`ramp` ``(step, total_steps, ramp_start, ramp_end)``.

    Hyper-parameters: ``quantile`` q in [0, 1] (GOOD_Q with Q = 100 q), ``eps``,
    ``kappa`` (paper, MNIST: ε = 0.3, κ = 0.3), ``ramp_start`` / ``ramp_end``
    (fractions of training), ``lam`` (out-batch size relative to B; the paper uses
    128 + 128, i.e. 1).
    """

    name = "good"
    out_source = "aux"

    def __init__(
        self,
        quantile: float = 1.0,
        eps: float = 0.3,
        kappa: float = 0.3,
        ramp_start: float = 0.0,
        ramp_end: float = 0.5,
        lam: float = 1.0,
    ) -> None:
        self.quantile = check_number(quantile, "quantile", low=0, high=1)
        self.eps = check_number(eps, "eps", low=0)
        self.kappa = check_number(kappa, "kappa", low=0)
        self.ramp_start = check_number(ramp_start, "ramp_start", low=0, high=1)
        self.ramp_end = check_number(ramp_end, "ramp_end", low=0, high=1)
        if self.ramp_end < self.ramp_start:
            raise ValueError(f"expected ramp_start <= ramp_end, got {ramp_start} and {ramp_end}")
        self.lam = check_number(lam, "lam", low=0, low_open=True)

    def schedule(self, step: int, total_steps: int) -> tuple[float, float]:
        """``(ε_t, κ_t)`` at ``step`` (linear ramp-up, §4.1)."""
        r = ramp(step, total_steps, self.ramp_start, self.ramp_end)
        return r * self.eps, r * self.kappa

    def out_loss(self, model: nn.Module, x_out: torch.Tensor, logits_out: torch.Tensor,
                 eps: float) -> tuple[torch.Tensor, dict[str, float]]:
        """The bracket of eq. 10 divided by M (eq. 9 when ``quantile == 1``)."""
        m = len(x_out)
        clean = cub_loss_clean(logits_out)
        n_bound = math.floor(self.quantile * m + 1e-9)
        logs = {"cub0": clean.mean().item()}
        if n_bound == 0:
            return clean.mean(), logs
        if eps == 0.0:  # the bound at radius 0 is the clean loss (up to rounding)
            return clean.mean(), {**logs, "cub_eps": logs["cub0"], "bound_frac": n_bound / m}
        bound = cub_loss(logit_diff_upper(model, x_out, eps))
        order = torch.argsort(bound.detach())
        use_bound = torch.zeros(m, dtype=torch.bool, device=x_out.device)
        use_bound[order[:n_bound]] = True
        per = torch.where(use_bound, bound, clean)
        logs.update(cub_eps=bound.mean().item(), bound_frac=n_bound / m)
        return per.mean(), logs

    def loss(self, model: nn.Module, batch: train.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 10 (eq. 9 for ``quantile = 1``) with the ramped ε_t and κ_t."""
        if batch.x_out is None:
            raise ValueError("method 'good' needs an auxiliary batch (pass x_out to train.fit)")
        eps, kappa = self.schedule(batch.step, batch.total_steps)
        n = len(batch.x_in)
        if self.quantile == 1.0:  # eq. 9: the clean out-logits are not needed (saves ~1/4 of a step)
            ce = F.cross_entropy(model(batch.x_in), batch.y_in)
            out = cub_loss(logit_diff_upper(model, batch.x_out, eps)).mean()
            loss = ce + kappa * out
            return loss, {"ce": ce.item(), "out": out.item(), "cub_eps": out.item(), "eps": eps,
                          "kappa": kappa, "loss": loss.item(), "bound_frac": 1.0}
        logits = model(torch.cat([batch.x_in, batch.x_out]))
        ce = F.cross_entropy(logits[:n], batch.y_in)
        out, logs = self.out_loss(model, batch.x_out, logits[n:], eps)
        loss = ce + kappa * out
        with torch.no_grad():
            mmc_out = torch.softmax(logits[n:], dim=1).max(dim=1).values.mean()
        return loss, {"ce": ce.item(), "out": out.item(), "mmc_out": mmc_out.item(), "eps": eps,
                      "kappa": kappa, "loss": loss.item(), **logs}


HPARAMS = ("quantile", "eps", "kappa", "ramp_start", "ramp_end", "lam")


def zoo_defaults(profile: Profile) -> dict[str, object]:
    """GOOD's hyper-parameters from the profile's chapter-05 fields (they enter the zoo hash)."""
    return {
        "quantile": 1.0,
        "eps": profile.good_eps,
        "kappa": profile.good_kappa,
        "ramp_start": profile.good_ramp[0],
        "ramp_end": profile.good_ramp[1],
    }




# --------------------------------------------------------------------------- helpers for chapters


def quantile_name(q: float) -> str:
    """``GOOD_Q`` with ``Q = 100 q`` (e.g. ``GOOD_80``)."""
    return f"GOOD_{round(100 * q)}"
