"""ODIN (Liang, Li & Srikant 2018): temperature scaling, input preprocessing, and their analysis.

The detector (§3)
-----------------
With logits ``f(x)`` and ``N`` classes, the temperature-scaled softmax is (eq. 1)

    S_i(x; T) = exp(f_i(x) / T) / Σ_j exp(f_j(x) / T),      S(x; T) = S_ŷ(x; T) = max_i S_i(x; T).

Each input is first moved by one signed-gradient step that *raises* its own softmax score (eq. 2)

    x̃ = x − ε · sign(−∇ₓ log S_ŷ(x; T)) = x + ε · sign(∇ₓ log S_ŷ(x; T)),

and the ODIN score is ``S(x̃; T) = max_i S_i(x̃; T)`` (higher = more in-distribution, the
convention of :mod:`oodlib.scores`). ``ŷ`` is the class predicted at ``x``; the score takes the
maximum at ``x̃`` (the detector ``g`` of §3 thresholds ``max_i p(x̃; T)``).

Conventions (docs/design.md, pitfall 3):

* ``ε`` is measured in the **[0, 1] pixel space** that oodlib models take as input (any
  normalisation lives inside the model). The authors' code normalises images first and divides
  the step by the normalisation's standard deviation for the same effect; pytorch-ood does so
  with its ``norm_std`` argument. With ``norm_std=None`` pytorch-ood 0.4.0 steps in whatever space
  the model receives, which is ours here (``tests/test_odin.py`` checks the two agree).
* ``x̃`` is **not clipped** to [0, 1] by default, as in the paper, the authors' code and
  pytorch-ood; ``clip=True`` clamps it (the difference is at most ε per pixel).
* pytorch-ood's ``ODIN.predict`` returns ``−S(x̃; T)`` (higher = more outlying); ours returns
  ``+S(x̃; T)``.
* The gradient is taken with :func:`torch.autograd.grad` with respect to the input only, with
  the model in eval mode (its mode is restored afterwards).

Parameter search (§4.4)
-----------------------
``T`` ∈ {1, 2, 5, …, 1000} and 21 values of ``ε`` in [0, 0.004] are chosen to minimise FPR at
95 % TPR on a held-out *tuning* split (:func:`split_tuning`); the evaluation split never sees
those images. :func:`odin_grid` scores every (T, ε) setting in one batched pass: the step
direction ``sign(∇ₓ log S_ŷ(x; T))`` depends on T but not on ε, so it costs one forward and one
backward pass per temperature, after which all ε values are scored in a single stacked forward
pass (``len(T) · (3 + len(ε))`` forward-pass equivalents per image instead of
``len(T) · len(ε) · 4``). :func:`search` picks the setting; ties in FPR are broken by the higher
AUROC, then by the smaller T and ε.

The analysis of §4.5 and §5 (temperature terms, distances, the same-manifold split) is in
:mod:`oodlib.odin_analysis`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import metrics
from .profiles import Profile
from .runtime import (
    batched,
    derive_seed,
    eval_mode,
    input_gradient,
    input_step,
    model_device,
    progress,
    torch_generator,
)
from .validation import check_images, check_number, check_positive_int, describe

# --------------------------------------------------------------------------- validation


def check_temperature(value: object, name: str = "temperature") -> float:
    return check_number(value, name, low=0, low_open=True)


def check_eps(value: object, name: str = "eps") -> float:
    return check_number(value, f"{name} (pixel units in [0, 1])", low=0)


def check_grid(values: object, name: str, check: Callable[[object, str], float]) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"expected {name} as a non-empty 1-D sequence of numbers, got {describe(values)}"
        ) from err
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"expected {name} as a non-empty 1-D sequence of numbers, got shape {arr.shape}")
    for v in arr:
        check(float(v), f"each of {name}")
    return arr


def check_logits(z: object) -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(f"expected logits as a tensor of shape (N, K) with K >= 2, got {describe(z)}")
    if not torch.isfinite(z).all():
        raise ValueError(f"expected finite logits, got {int((~torch.isfinite(z)).sum())} NaN/inf values")
    return z


# --------------------------------------------------------------------------- the detector (eq. 1-2)


def softmax_score(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The softmax score ``S(x; T) = max_i S_i(x; T)`` of eq. 1 from logits ``(N, K)``."""
    z = check_logits(logits)
    t = check_temperature(temperature)
    return torch.softmax(z / t, dim=1).max(dim=1).values


def _log_max_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``log S_ŷ(x; T)`` per sample, ŷ = argmax f(x) (the same for every T): eq. 2's objective."""
    return torch.log_softmax(logits / temperature, dim=1).max(dim=1).values


def _ascent_direction(model: nn.Module, x: torch.Tensor, temperature: float) -> torch.Tensor:
    """``sign(∇ₓ log S_ŷ(x; T))`` for one batch on the model's device (eq. 2); odin_grid reuses it
    for every ε."""
    return input_gradient(lambda v: _log_max_softmax(model(v), temperature), x)[1].sign()


def odin_grid(
    model: nn.Module,
    x: torch.Tensor,
    temperatures: Sequence[float],
    epsilons: Sequence[float],
    *,
    clip: bool = False,
    batch_size: int = 256,
    desc: str | None = None,
) -> torch.Tensor:
    """ODIN scores ``S(x̃; T)`` for every (T, ε) pair: a tensor ``(len(T), len(ε), N)`` on the CPU.

    Batched as described in the module docstring: per batch and temperature, one forward and
    backward pass give the step direction of eq. 2, then the ``len(ε)`` perturbed copies are
    scored in one stacked forward pass. ``batch_size`` counts clean images (the stacked pass holds
    ``batch_size · len(ε)``). ``desc`` shows a progress bar.
    """
    check_images(x, "x")
    temps = check_grid(temperatures, "temperatures", check_temperature)
    eps = check_grid(epsilons, "epsilons", check_eps)
    check_positive_int(batch_size, "batch_size")
    dev = model_device(model)
    n, n_t, n_e = len(x), len(temps), len(eps)
    out = torch.empty(n_t, n_e, n, dtype=x.dtype)
    eps_t = torch.as_tensor(eps, dtype=x.dtype, device=dev).view(n_e, 1, 1, 1, 1)
    need_grad = bool((eps > 0).any())
    with eval_mode(model):
        starts = range(0, n, batch_size)
        for s in starts if desc is None else progress(starts, desc=desc, leave=False):
            xb = x[s : s + batch_size].detach().to(dev)
            b = len(xb)
            for ti, t in enumerate(temps):
                if need_grad:
                    direction = _ascent_direction(model, xb, float(t))
                    xs = xb.unsqueeze(0) + eps_t * direction.unsqueeze(0)  # (nE, B, C, H, W)
                    if clip:
                        xs = xs.clamp(0.0, 1.0)
                    with torch.no_grad():
                        z = model(xs.reshape(n_e * b, *xb.shape[1:]))
                    out[ti, :, s : s + b] = torch.softmax(z / t, 1).max(1).values.view(n_e, b).cpu()
                else:
                    with torch.no_grad():
                        z = model(xb)
                    out[ti, :, s : s + b] = torch.softmax(z / t, 1).max(1).values.cpu().expand(n_e, b)
    return out


def odin(
    model: nn.Module,
    x: torch.Tensor,
    temperature: float = 1000.0,
    eps: float = 0.0014,
    *,
    clip: bool = False,
    batch_size: int = 500,
) -> torch.Tensor:
    """The ODIN score ``S(x̃; T)`` (eq. 1–2), ``Tensor[N]`` on the CPU, higher = in-distribution.

    Defaults are the paper's setting for DenseNet on CIFAR-10 (T = 1000, ε = 0.0014, Fig. 1,
    Table 4–5); ε is in [0, 1] pixel units. ``T = 1, ε = 0`` is the max-softmax baseline.
    """
    t = check_temperature(temperature)
    e = check_eps(eps)
    return odin_grid(model, x, [t], [e], clip=clip, batch_size=batch_size)[0, 0]


def perturb(
    model: nn.Module,
    x: torch.Tensor,
    temperature: float = 1000.0,
    eps: float = 0.0014,
    *,
    clip: bool = False,
    batch_size: int = 500,
) -> torch.Tensor:
    """The preprocessed images ``x̃ = x − ε sign(−∇ₓ log S_ŷ(x; T))`` of eq. 2 (same device as x)."""
    check_images(x, "x")
    t = check_temperature(temperature)
    e = check_eps(eps)
    check_positive_int(batch_size, "batch_size")
    def step(xb: torch.Tensor) -> torch.Tensor:
        xt = input_step(lambda v: _log_max_softmax(model(v), t), xb, e)
        return xt.clamp(0.0, 1.0) if clip else xt

    with eval_mode(model):
        return batched(step, x, batch_size, model_device(model)).to(x.device)


def grad_norm(
    model: nn.Module, x: torch.Tensor, temperature: float = 1.0, *, batch_size: int = 500
) -> torch.Tensor:
    """``‖∇ₓ log S_ŷ(x; T)‖₁`` per image (§5.3, Fig. 5c–e), ``Tensor[N]`` float64 on the CPU.

    To first order, the preprocessing step raises ``log S`` by ε times this norm:
    ``log S_ŷ(x̃; T) = log S_ŷ(x; T) + ε ‖∇ₓ log S_ŷ(x; T)‖₁ + o(ε)``.
    """
    check_images(x, "x")
    t = check_temperature(temperature)
    check_positive_int(batch_size, "batch_size")
    def norm(xb: torch.Tensor) -> torch.Tensor:
        return input_gradient(lambda v: _log_max_softmax(model(v), t), xb)[1].flatten(1).abs().sum(1).double()

    with eval_mode(model):
        return batched(norm, x, batch_size, model_device(model))


class ODINScorer:
    """Memoised ODIN scores for named image sets: each (set, T, ε) is computed once.

    ``ODINScorer(model, {"in": x_eval, "photos": x_photos_eval})("photos", 1000, 0.002)``.
    Table 2, the transfer table (App. H) and the tuning-size study evaluate many OOD sets at the
    same few chosen settings and share the in-distribution scores through this cache.
    """

    def __init__(
        self, model: nn.Module, images: Mapping[str, torch.Tensor], *, clip: bool = False,
        batch_size: int = 256,
    ) -> None:
        for name, x in images.items():
            check_images(x, f"images[{name!r}]")
        self.model = model
        self.images = dict(images)
        self.clip = clip
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self._cache: dict[tuple[str, float, float], torch.Tensor] = {}

    def __call__(self, name: str, temperature: float, eps: float) -> torch.Tensor:
        """Scores ``S(x̃; T)`` of the set ``name`` at one setting."""
        if name not in self.images:
            raise ValueError(f"unknown image set {name!r}; expected one of {sorted(self.images)}")
        key = (name, check_temperature(temperature), check_eps(eps))
        if key not in self._cache:
            self._cache[key] = odin_grid(self.model, self.images[name], [key[1]], [key[2]],
                                         clip=self.clip, batch_size=self.batch_size)[0, 0]
        return self._cache[key]

    def grid(self, name: str, temperatures: Sequence[float], epsilons: Sequence[float],
             desc: str | None = None) -> torch.Tensor:
        """Scores ``(len(T), len(ε), N)`` of the set ``name``; fills the per-setting cache."""
        if name not in self.images:
            raise ValueError(f"unknown image set {name!r}; expected one of {sorted(self.images)}")
        g = odin_grid(self.model, self.images[name], temperatures, epsilons, clip=self.clip,
                      batch_size=self.batch_size, desc=desc)
        for i, t in enumerate(temperatures):
            for j, e in enumerate(epsilons):
                self._cache[(name, float(t), float(e))] = g[i, j]
        return g


# --------------------------------------------------------------------------- parameter search (§4.4)


def epsilon_grid(n: int = 21, max_eps: float = 0.004) -> np.ndarray:
    """``n`` evenly spaced perturbation magnitudes from 0 to ``max_eps`` (§4.4: 21 values, 0.004)."""
    check_positive_int(n, "n")
    m = check_eps(max_eps, "max_eps")
    return np.linspace(0.0, m, n) if n > 1 else np.zeros(1)


def split_tuning(n: int, n_tune: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint random index sets ``(tune, evaluate)`` of sizes ``n_tune`` and ``n - n_tune``.

    §4.4: "for each out-of-distribution dataset, we randomly hold out 1,000 images for tuning the
    parameters T and ε … We evaluate our approach on the remaining test images". Both index
    tensors are sorted; the same seed gives the same split.
    """
    check_positive_int(n, "n")
    check_positive_int(n_tune, "n_tune")
    if n_tune >= n:
        raise ValueError(f"expected n_tune < n so that images remain for evaluation, got {n_tune} >= {n}")
    perm = torch.randperm(n, generator=torch_generator(int(seed)))
    return perm[:n_tune].sort().values, perm[n_tune:].sort().values


@dataclass
class Search:
    """Result of the (T, ε) search on a tuning split (§4.4).

    ``fpr`` and ``auroc`` are ``(len(T), len(ε))`` arrays measured on the tuning images;
    ``temperature`` / ``eps`` is the chosen setting.
    """

    temperatures: np.ndarray
    epsilons: np.ndarray
    fpr: np.ndarray
    auroc: np.ndarray
    temperature: float
    eps: float

    @property
    def best_fpr(self) -> float:
        """FPR@95 of the chosen setting on the tuning split."""
        i = int(np.flatnonzero(self.temperatures == self.temperature)[0])
        j = int(np.flatnonzero(self.epsilons == self.eps)[0])
        return float(self.fpr[i, j])

    def table(self) -> pd.DataFrame:
        """Long table ``(T, eps, FPR95, AUROC)`` of every setting searched."""
        t, e = np.meshgrid(self.temperatures, self.epsilons, indexing="ij")
        return pd.DataFrame({"T": t.ravel(), "eps": e.ravel(), "FPR95": self.fpr.ravel(),
                             "AUROC": self.auroc.ravel()})


def search(
    grid_in: torch.Tensor,
    grid_out: torch.Tensor,
    temperatures: Sequence[float],
    epsilons: Sequence[float],
    *,
    tpr: float = 0.95,
) -> Search:
    """Choose (T, ε) minimising FPR at ``tpr`` TPR on tuning scores from :func:`odin_grid`.

    ``grid_in`` ``(len(T), len(ε), N_in)`` and ``grid_out`` ``(len(T), len(ε), N_out)`` hold the
    ODIN scores of the in-distribution and OOD tuning images. Ties in FPR (frequent on easy sets,
    where many settings reach 0) are broken by the higher AUROC, then by the smaller T, then by
    the smaller ε.
    """
    temps = check_grid(temperatures, "temperatures", check_temperature)
    eps = check_grid(epsilons, "epsilons", check_eps)
    shape = (len(temps), len(eps))
    for name, g in (("grid_in", grid_in), ("grid_out", grid_out)):
        if not isinstance(g, torch.Tensor) or g.ndim != 3 or tuple(g.shape[:2]) != shape or g.shape[2] == 0:
            raise ValueError(f"expected {name} as a tensor of shape ({shape[0]}, {shape[1]}, N) from "
                             f"odin_grid, got {describe(g)}")
    fpr = np.empty(shape)
    auc = np.empty(shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            fpr[i, j] = metrics.fpr_at_tpr(grid_in[i, j], grid_out[i, j], tpr)
            auc[i, j] = metrics.auroc(grid_in[i, j], grid_out[i, j])
    ti, ej = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    order = np.lexsort((ej.ravel(), ti.ravel(), -auc.ravel(), fpr.ravel()))  # last key is primary
    best = int(order[0])
    i, j = divmod(best, shape[1])
    return Search(temps, eps, fpr, auc, float(temps[i]), float(eps[j]))


def fpr_grid(grid_in: np.ndarray, grid_out: np.ndarray, tpr: float = 0.95) -> np.ndarray:
    """FPR at ``tpr`` TPR for every setting of score grids ``(..., N_in)`` and ``(..., N_out)`` at once.

    The same threshold as :func:`oodlib.metrics.fpr_at_tpr` (the k-th largest in-distribution
    score, k = ceil(tpr · N_in)), vectorised over the leading axes — the bootstrap below re-runs
    the whole (T, ε) search hundreds of times.
    """
    n = grid_in.shape[-1]
    k = metrics.tpr_rank(n, tpr)
    thr = np.partition(grid_in, n - k, axis=-1)[..., n - k]
    return (grid_out >= thr[..., None]).mean(axis=-1)


def _choose(grid_in: np.ndarray, grid_out: np.ndarray) -> tuple[int, int]:
    """The (T, ε) index :func:`search` picks: least FPR, then highest AUROC, smaller T, smaller ε."""
    fpr = fpr_grid(grid_in, grid_out)
    cand = np.argwhere(fpr == fpr.min())
    if len(cand) == 1:
        return int(cand[0, 0]), int(cand[0, 1])
    auc = np.array([metrics.auroc(grid_in[i, j], grid_out[i, j]) for i, j in cand])
    best = np.lexsort((cand[:, 1], cand[:, 0], -auc))[0]
    return int(cand[best, 0]), int(cand[best, 1])


# --------------------------------------------------------------------------- a whole study (§4.4, App. H)

IN = "(in-distribution)"  #: key of the in-distribution images in a Study's scorer


@dataclass
class Study:
    """ODIN tuned on held-out images and evaluated on the rest, for one model (§4.4, App. H).

    Built by :func:`run_study`. The tuning grids hold ``S(x̃; T)`` for every (T, ε) on the tuning
    images; ``scorer`` computes scores of the evaluation images on demand (keys: :data:`IN` and
    the OOD set names) and never sees a tuning image.
    """

    model: nn.Module
    temperatures: np.ndarray
    epsilons: np.ndarray
    tune_in: torch.Tensor  # (nT, nE, n_tune_in)
    tune_out: dict[str, torch.Tensor]  # per set (nT, nE, n_tune)
    searches: dict[str, Search]
    scorer: ODINScorer
    stand_in: dict[str, str | None]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]  # per set (incl. IN): (tune, eval) indices

    @property
    def sets(self) -> list[str]:
        """The OOD set names, in the order given."""
        return list(self.tune_out)

    def chosen(self, name: str) -> tuple[float, float]:
        """The (T, ε) tuned on the set ``name``."""
        s = self.searches[name]
        return s.temperature, s.eps

    def evaluate(self, test: str, temperature: float, eps: float) -> dict[str, float]:
        """:func:`oodlib.metrics.ood_metrics` of the evaluation split of ``test`` at (T, ε)."""
        return metrics.ood_metrics(self.scorer(IN, temperature, eps), self.scorer(test, temperature, eps))

    def table(self) -> pd.DataFrame:
        """Table 2 analogue: baseline (T = 1, ε = 0) and ODIN (tuned on the same set), evaluation split.

        Long format: ``ood_set, stand_in_for, detector, T, eps, metric, value`` (fractions).
        """
        rows = []
        for name in self.sets:
            for det, (t, e) in (("baseline", (1.0, 0.0)), ("ODIN", self.chosen(name))):
                for metric, value in self.evaluate(name, t, e).items():
                    rows.append({"ood_set": name, "stand_in_for": self.stand_in.get(name), "detector": det,
                                 "T": t, "eps": e, "metric": metric, "value": value})
        return pd.DataFrame(rows)

    def scores_at(self, settings: Mapping[str, tuple[float, float]]) -> tuple[dict, dict]:
        """Evaluation-split scores, each OOD set at its own ``(T, ε)``: ``({set: s_in}, {set: s_out})``.

        float64 numpy arrays, for the paired bootstraps of :mod:`oodlib.claims` (the
        in-distribution images are the same for every set; their scores differ with the setting).
        """
        s_in, s_out = {}, {}
        for name, (t, e) in settings.items():
            s_in[name] = self.scorer(IN, t, e).double().numpy()
            s_out[name] = self.scorer(name, t, e).double().numpy()
        return s_in, s_out

    def transfer(self, metric: str = "FPR95") -> pd.DataFrame:
        """Table 10 analogue: ``metric`` on each test set (rows) with (T, ε) tuned on each set (columns)."""
        out = pd.DataFrame(index=self.sets, columns=self.sets, dtype=float)
        for tuned in self.sets:
            t, e = self.chosen(tuned)
            for test in self.sets:
                out.loc[test, tuned] = self.evaluate(test, t, e)[metric]
        out.index.name, out.columns.name = "test set", "tuned on"
        return out

    def tuning_size_curve(
        self, name: str, x: torch.Tensor, sizes: Sequence[int], repeats: int, seed: int = 0,
        tpr: float = 0.95,
    ) -> pd.DataFrame:
        """Fig. 15 analogue: FPR at ``tpr`` TPR versus the size of the OOD tuning set.

        ``x`` holds all images of the OOD set ``name``; it is split afresh into a tuning pool of
        ``max(sizes)`` images and test images. For each size, ``repeats`` random tuning sets are
        drawn from the pool, (T, ε) is searched with the in-distribution tuning images, and, as in
        App. H, the threshold δ is fixed at ``tpr`` TPR on the in-distribution tuning images; the
        FPR is measured on the test images. Rows: ``size, repeat, T, eps, FPR95``.
        """
        sizes = [check_positive_int(s, "each of sizes") for s in sizes]
        check_positive_int(repeats, "repeats")
        check_images(x, "x")
        pool, test = split_tuning(len(x), max(sizes), seed)
        grid = odin_grid(self.model, x[pool], self.temperatures, self.epsilons,
                         batch_size=self.scorer.batch_size, desc=f"Fig. 15 grid ({name})")
        test_scorer = ODINScorer(self.model, {"test": x[test]}, clip=self.scorer.clip,
                                 batch_size=self.scorer.batch_size)
        gen = torch_generator(int(seed))
        rows = []
        for size in sizes:
            for r in range(repeats):
                pick = torch.randperm(len(pool), generator=gen)[:size]
                s = search(self.tune_in, grid[:, :, pick], self.temperatures, self.epsilons, tpr=tpr)
                i = int(np.flatnonzero(self.temperatures == s.temperature)[0])
                j = int(np.flatnonzero(self.epsilons == s.eps)[0])
                delta = metrics.tpr_threshold(self.tune_in[i, j].double().numpy(), tpr)
                fpr = float((test_scorer("test", s.temperature, s.eps).double().numpy() >= delta).mean())
                rows.append({"size": size, "repeat": r, "T": s.temperature, "eps": s.eps, "FPR95": fpr})
        return pd.DataFrame(rows)


def run_study(
    model: nn.Module,
    x_in: torch.Tensor,
    ood: Mapping[str, torch.Tensor] | Mapping[str, object],
    profile: Profile,
    *,
    tag: str = "",
    clip: bool = False,
    batch_size: int = 128,
) -> Study:
    """Split, grid-search and set up evaluation of ODIN for ``model`` (§4.4).

    ``x_in`` are the in-distribution test images; ``ood`` maps names to images or to
    :class:`oodlib.data.OODSet` objects. Sizes come from ``profile.odin``: ``tune_in``
    in-distribution and ``tune_size`` OOD images per set are held out for tuning over
    ``temperatures`` × :func:`epsilon_grid` (``num_eps``, ``max_eps``); the splits
    are seeded from ``profile.seed``, the set name and ``tag``. Cost: ``len(T) · (3 + len(ε))``
    forward-pass equivalents per tuning image (see :func:`odin_grid`).
    """
    temps = np.asarray(profile.odin.temperatures, dtype=np.float64)
    eps = epsilon_grid(profile.odin.num_eps, profile.odin.max_eps)
    images = {k: getattr(v, "x", v) for k, v in ood.items()}
    stand_in = {k: getattr(v, "stand_in_for", None) for k, v in ood.items()}
    check_images(x_in, "x_in")
    splits = {IN: split_tuning(len(x_in), profile.odin.tune_in, derive_seed(profile.seed, f"odin {tag} in"))}
    for k, x in images.items():
        check_images(x, f"ood[{k!r}]")
        splits[k] = split_tuning(len(x), profile.odin.tune_size, derive_seed(profile.seed, f"odin {tag} {k}"))
    tune_in = odin_grid(model, x_in[splits[IN][0]], temps, eps, clip=clip, batch_size=batch_size,
                        desc="grid: in-distribution")
    tune_out, searches = {}, {}
    for k, x in images.items():
        tune_out[k] = odin_grid(model, x[splits[k][0]], temps, eps, clip=clip, batch_size=batch_size,
                                desc=f"grid: {k}")
        searches[k] = search(tune_in, tune_out[k], temps, eps)
    evals = {IN: x_in[splits[IN][1]], **{k: x[splits[k][1]] for k, x in images.items()}}
    scorer = ODINScorer(model, evals, clip=clip, batch_size=batch_size)
    return Study(model, temps, eps, tune_in, tune_out, searches, scorer, stand_in, splits)
