"""GOOD: guaranteed OOD detection by interval bound propagation (Bitterwolf, Meinke & Hein 2020).

* **GOOD and quantile GOOD (eq. 9 / 10).** The training plug-in ``"good"``: cross-entropy on the
  in-distribution plus ``κ`` times the CUB loss (eq. 8, :func:`oodlib.ibp.cub_loss`) at radius ε
  on the fraction ``q`` of each out-batch with the *lowest* bound loss and the CUB loss at ε = 0
  on the rest; ``q = 1`` is GOOD_100 (eq. 9), ``q = 0`` is GOOD_0 (an OE/CEDA-like model). ε and
  κ ramp up linearly (:func:`ramp`; §4.1, the paper's exact schedule is in its Appendix D).
* **Evaluation (§5).** The AUC, the adversarial AUC (AAUC: the worst confidence an APGD attack
  finds in the ε-ball) and the guaranteed AUC (GAUC: IBP's certified upper bound, eq. 6) of
  Table 2 (:func:`worst_case_confidences`, :func:`auc_triplet`).

The bounds themselves (eq. 3–8) are in :mod:`oodlib.ibp`.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import train
from .apgd import max_confidence_attack
from .ibp import certified_confidence, cub_loss, cub_loss_clean, logit_diff_upper, supports
from .metrics import auroc_conservative
from .profiles import Profile
from .runtime import predict_proba, progress
from .validation import check_images, check_positive_int, describe

# --------------------------------------------------------------------------- GOOD training (eq. 9 / 10)


def ramp(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear ramp-up factor in [0, 1]: 0 before ``start``, 1 after ``end`` (fractions of training)."""
    if total_steps <= 0:
        raise ValueError(f"expected total_steps > 0, got {total_steps!r}")
    frac = step / total_steps
    if end <= start:
        return 1.0 if frac >= start else 0.0
    return float(min(1.0, max(0.0, (frac - start) / (end - start))))


def _check_frac(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0.0 <= value <= 1.0):
        raise ValueError(f"expected {name} as a number in [0, 1], got {value!r}")
    return float(value)


def _check_nonneg(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value >= 0
    ):
        raise ValueError(f"expected {name} as a finite number >= 0, got {value!r}")
    return float(value)


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
        self.quantile = _check_frac(quantile, "quantile")
        self.eps = _check_nonneg(eps, "eps")
        self.kappa = _check_nonneg(kappa, "kappa")
        self.ramp_start = _check_frac(ramp_start, "ramp_start")
        self.ramp_end = _check_frac(ramp_end, "ramp_end")
        if self.ramp_end < self.ramp_start:
            raise ValueError(f"expected ramp_start <= ramp_end, got {ramp_start} and {ramp_end}")
        if isinstance(lam, bool) or not isinstance(lam, int | float) or not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"expected lam as a finite number > 0, got {lam!r}")
        self.lam = float(lam)

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


# --------------------------------------------------------------------------- evaluation: AUC / AAUC / GAUC


def worst_case_confidences(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    steps: int,
    restarts: int = 1,
    seed: int = 0,
    certify: bool | None = None,
) -> dict[str, torch.Tensor]:
    """Per point: clean confidence <= attacked (lower bound on the worst case) <= certified (upper bound).

    ``attacked`` comes from :func:`oodlib.apgd.max_confidence_attack` (clean,
    low-contrast and ``restarts`` uniform starts, worst case per point, the clean
    point included); ``certified`` is eq. 6 on the ball ∩ [0, 1]^d
    (:func:`certified_confidence`). ``certify=None`` certifies with IBP when
    :func:`supports` the model and otherwise uses the trivial bound 1 (e.g. CCU,
    whose Gaussian mixtures IBP here cannot pass); ``False`` skips the bound.
    Returns CPU tensors ``clean``, ``attacked`` and ``certified``.
    """
    gen = torch.Generator().manual_seed(seed)
    res = max_confidence_attack(model, x, eps, steps=steps, restarts=restarts, generator=gen)
    out = {"clean": res.clean.float(), "attacked": res.confidence.float()}
    if certify is None:
        certify = supports(model)
        if not certify:
            out["certified"] = torch.ones(len(x))
    if certify:
        out["certified"] = certified_confidence(model, x, eps)
    return out


def auc_triplet(s_in: torch.Tensor, conf: dict[str, torch.Tensor]) -> dict[str, float]:
    """``AUC``, ``AAUC``, ``GAUC`` (as fractions) from in-distribution confidences and the OOD
    confidences of :func:`worst_case_confidences`.

    All three use the conservative AUC (ties count as failures, GOOD App. C; pitfall 2):
    P(conf_in > conf_out) with conf_out clean, attacked and certified. Since the
    conservative AUC falls when any OOD score rises, ``GAUC <= AAUC <= AUC`` holds
    whenever ``clean <= attacked <= certified`` point by point.
    """
    names = {"clean": "AUC", "attacked": "AAUC", "certified": "GAUC"}
    return {names[k]: auroc_conservative(s_in, v) for k, v in conf.items() if k in names}


def good_table(
    models_: dict[str, object],
    x_in: torch.Tensor,
    y_in: torch.Tensor,
    ood_sets: dict[str, object],
    eps: float,
    n_attack: int,
    steps: int,
    restarts: int = 1,
    seed: int = 0,
) -> tuple[object, dict[str, dict[str, dict[str, torch.Tensor]]]]:
    """Table 1 of GOOD: accuracy and AUC / AAUC / GAUC per model and OOD set.

    ``models_`` maps display names to :class:`oodlib.zoo.Entry` (results are
    cached in the entry's record under a key naming ε, the attack and the set)
    or bare modules. Each OOD set contributes its first ``n_attack`` images, the
    same images for all three AUCs; the in-distribution side is the clean
    confidence on ``x_in``. Returns the long DataFrame
    ``(model, ood_set, stand_in_for, metric, value, certificate)`` (accuracy as
    ``ood_set='(in-distribution)'``; ``certificate`` is ``"IBP"`` or ``"trivial"``
    (bound 1) for models IBP cannot pass, see :func:`worst_case_confidences`) and the
    per-point confidences
    ``conf[model][set] = {clean, attacked, certified}``.
    """
    check_positive_int(n_attack, "n_attack")
    check_images(x_in, "x_in")
    if not isinstance(y_in, torch.Tensor) or y_in.shape != (len(x_in),):
        raise ValueError(f"expected y_in as a tensor of {len(x_in)} labels, got {describe(y_in)}")
    rows: list[dict] = []
    confs: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    for name, obj in progress(models_.items(), desc="Table 1", leave=False):
        model = getattr(obj, "model", obj)
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"expected models_ values as zoo entries or nn.Modules, got {type(obj).__name__}"
            )
        conf_in, pred = predict_proba(model, x_in).max(dim=1)  # the MSP score and the prediction
        s_in = conf_in
        cert = "IBP" if supports(model) else "trivial"
        rows.append({"model": name, "ood_set": "(in-distribution)", "stand_in_for": None,
                     "metric": "accuracy", "value": float((pred == y_in.cpu()).float().mean()),
                     "certificate": cert})
        confs[name] = {}
        for set_name, s in ood_sets.items():
            x = s.x[:n_attack]

            def compute(x: torch.Tensor = x, model: nn.Module = model) -> dict[str, list[float]]:
                c = worst_case_confidences(model, x, eps, steps, restarts, seed)
                return {k: v.tolist() for k, v in c.items()}

            key = f"good_eval|{set_name}|n={len(x)}|eps={eps:g}|steps={steps}|restarts={restarts}|seed={seed}"
            raw = obj.cached(key, compute) if hasattr(obj, "cached") else compute()
            conf = {k: torch.tensor(v) for k, v in raw.items()}
            confs[name][set_name] = conf
            for metric, value in auc_triplet(s_in, conf).items():
                rows.append({"model": name, "ood_set": set_name, "stand_in_for": s.stand_in_for,
                             "metric": metric, "value": value, "certificate": cert})
    return pd.DataFrame(rows), confs
