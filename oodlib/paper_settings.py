"""Each paper in its own setting: the in-distribution set, network and training recipe of its headline tables.

``ci`` and the book's ``full`` profile train every chapter on Fashion-MNIST. The papers report on
MNIST, SVHN and CIFAR-10/100 with their own networks and recipes; a :class:`PaperSetting` names one
of them — the chapter, the paper's tables it reproduces, the data set, the architecture, the
methods trained in it — and the profile leaves its recipe changes, each with where the paper says
so (:class:`Cited`). A value the paper does not state says that, and what we use instead and why;
:func:`table` lists them all. ``setting.profile(profiles.FULL)`` is the profile such a model trains
under (its recipe enters the zoo hash like any other), ``setting.profile(profiles.SMOKE)`` the same
code path at toy sizes; ``python -m oodlib zoo plan --settings`` lists the models and ``zoo train
--settings`` trains them. Models that need an auxiliary pool (OE, CCU, GOOD, ATOM) train once the
pool is in the data root (:func:`oodlib.datasets.load_random_300k`).

Recipes were read from the papers' texts (Hein et al. 2019 App. F; Liang et al. 2018 §4.1;
Meinke & Hein 2020 App. C; Bitterwolf et al. 2020 §4.1 — our copy ends before its appendix, which
holds GOOD's optimiser and schedules; Chen et al. 2021 App. B.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from . import datasets
from .profiles import SMOKE_SIZES, Profile
from .validation import check_choice


@dataclass(frozen=True)
class Cited:
    """A recipe value and where the paper states it (or ``"not stated: ..."`` with our choice and why)."""

    value: object
    cite: str


@dataclass(frozen=True)
class PaperSetting:
    """One (paper, in-distribution, network) of a paper's headline tables, and its training recipe.

    ``leaves`` are dotted profile leaves (``"train.lr"``, ``"good.eps"``) applied on top of the base
    profile; ``methods`` are zoo methods (``"plain"``, ``"ceda"``, ...) trained in this setting;
    ``pool`` names the auxiliary data those methods need (``None``: none).
    """

    key: str
    chapter: str
    paper: str
    reproduces: str
    dataset: str
    arch: str
    methods: tuple[str, ...]
    leaves: Mapping[str, Cited] = field(default_factory=dict)
    pool: str | None = None

    def profile(self, base: Profile) -> Profile:
        """``base`` with this setting's recipe; a ``smoke`` base keeps its toy sizes
        (:data:`oodlib.profiles.SMOKE_SIZES`).

        ``ci`` has no paper settings (it stays on Fashion-MNIST): ``ValueError``.
        """
        if base.name not in ("full", "smoke"):
            raise ValueError(f"expected the full or smoke profile for a paper setting, got {base.name!r} "
                             "(ci trains the book's Fashion-MNIST models only)")
        leaves = {k: c.value for k, c in self.leaves.items()}
        if base.name == "smoke":
            leaves = {**{k: SMOKE_SIZES.get(k, v) for k, v in leaves.items()}, **SETTING_SMOKE_SIZES}
        return base.replace_leaves(leaves)


#: ``smoke``'s sizes for the papers' settings, over :data:`oodlib.profiles.SMOKE_SIZES`: one batch of
#: the synthetic training split (``make smoke`` writes 64 images), the synthetic 300K array's 300 images
#: as the pool, and few images evaluated and attacked, so DenseNet-BC-100 and WRN-28-10 train and test
#: in seconds on CPU at their real structure
SETTING_SMOKE_SIZES: dict[str, object] = {
    "train.train_size": 32, "train.aux_size": 300, "eval.test_size": 16, "eval.ood_size": 4,
    "eval.attack_size": 1, "odin.tune_in": 6, "odin.tune_size": 2, "odin.temperatures": (1000,),
    "odin.num_eps": 2, "atom.eval_steps": 1, "atom.candidates": 100, "atom.keep": 25, "atom.holdout": 50}


def _split_sizes(dataset: str) -> dict[str, Cited]:
    spec = datasets.IN_DISTRIBUTIONS[dataset]
    return {"train.train_size": Cited(spec.sizes[0], f"the whole {spec.title} training split"),
            "eval.test_size": Cited(spec.sizes[1], f"the whole {spec.title} test split")}


# ------------------------------------------------------------------ Hein et al. 2019 (chapters 01-02)
_HEIN = "Hein et al. 2019, App. F 'Training'"
_HEIN_COMMON = {
    "train.epochs": Cited(100, f"{_HEIN}: 'trained for 100 epochs'"),
    "train.lr_milestones": Cited((0.5, 0.75, 0.9), f"{_HEIN}: /10 'at the 50th, 75th and 90th' epoch"),
    "train.weight_decay": Cited(5e-4, f"{_HEIN}: '5·10^-4 for all models'"),
    "train.batch_size": Cited(128, "not stated (§4: 'batchsize B'); ours: 128, Meinke & Hein App. C's"),
}
_HEIN_SGD = {
    "train.optimizer": Cited("sgd", f"{_HEIN}: 'SGD+momentum for SVHN/CIFAR-10/CIFAR-100'"),
    "train.lr": Cited(0.1, f"{_HEIN}: 'initial learning rate … 0.1 for SVHN/CIFAR-10'"),
    "train.momentum": Cited(0.9, "not stated; ours: 0.9, the value of ODIN §4.1 and ATOM App. B.1"),
    "train.crop_pad": Cited(4, "App. F: 'random crops for all datasets', padding not stated; ours: 4 "
                               "(Meinke & Hein App. C.1, same group)"),
}

# ------------------------------------------------------------------ Liang et al. 2018 (chapter 03)
_ODIN = "Liang et al. 2018, §4.1"
_ODIN_COMMON = {
    "train.optimizer": Cited("sgd", f"{_ODIN}: 'stochastic gradient descent with Nesterov momentum'"),
    "train.nesterov": Cited(True, f"{_ODIN}: 'Nesterov momentum'"),
    "train.momentum": Cited(0.9, f"{_ODIN}: 'momentum 0.9'"),
    "train.lr": Cited(0.1, f"{_ODIN}: 'The learning rate starts at 0.1'"),
    "train.lr_milestones": Cited((0.5, 0.75), f"{_ODIN}: 'dropped by a factor of 10 at 50% and 75%'"),
    "train.crop_pad": Cited(4, f"not stated ({_ODIN}: 'identical to the original … implementations'); "
                               "ours: the 4-px random shifts those implementations use on CIFAR"),
    "train.crop_mode": Cited("constant", "not stated; ours: zero padding, as the original implementations"),
    "train.hflip": Cited(True, "not stated; ours: the mirroring of the original implementations"),
}
_DENSENET = {
    "train.epochs": Cited(300, f"{_ODIN}: 'Dense-BC for 300 epochs'"),
    "train.batch_size": Cited(64, f"{_ODIN}: 'with batch size 64'"),
    "train.weight_decay": Cited(1e-4, "not stated; cites Huang et al. 2017, whose value is 1e-4"),
}
_WRN = {
    "train.epochs": Cited(200, f"{_ODIN}: 'Wide ResNet for 200 epochs'"),
    "train.batch_size": Cited(128, f"{_ODIN}: 'with batch size 128'"),
    "train.weight_decay": Cited(5e-4, "not stated; cites Zagoruyko & Komodakis 2016, whose value is 5e-4"),
}

# ------------------------------------------------------------------ Meinke & Hein 2020 (chapter 04)
_CCU = "Meinke & Hein 2020, App. C"
_CCU_COMMON = {
    "train.epochs": Cited(100, f"{_CCU}: 'the total number of epochs 100'"),
    "train.lr_milestones": Cited((0.5, 0.75, 0.9), f"{_CCU}: /10 'after 50, 75 and 90 epochs'"),
    "train.batch_size": Cited(128, f"{_CCU}: 'Our batch size is 128'"),
    "train.weight_decay": Cited(5e-4, f"{_CCU}: 'weight decay is set to 5e−4'"),
}
_CCU_SGD = {
    "train.optimizer": Cited("sgd", f"{_CCU}: 'SGD with learning rate 0.1 for the other datasets'"),
    "train.lr": Cited(0.1, f"{_CCU}: 'SGD with learning rate 0.1'"),
    "train.momentum": Cited(0.9, "not stated; ours: 0.9, the value of ODIN §4.1 and ATOM App. B.1"),
}
_ADAM_MNIST = {
    "train.optimizer": Cited("adam", "Adam on MNIST (Hein et al. 2019 App. F; Meinke & Hein 2020 App. C)"),
    "train.lr": Cited(1e-3, "'10^-3 for MNIST' (Hein et al. 2019 App. F; Meinke & Hein 2020 App. C)"),
    "train.momentum": Cited(0.0, "Adam (Hein et al. 2019 App. F): no SGD momentum"),
    "train.nesterov": Cited(False, "Adam (Hein et al. 2019 App. F): no SGD momentum"),
}
_CROPS = "Meinke & Hein 2020, App. C.1"
_CROP_28 = {"train.crop_pad": Cited(2, f"{_CROPS}: 'padding of 2 pixels on MNIST and FMNIST'")}
_CROP_SVHN = {"train.crop_pad": Cited(4, f"{_CROPS}: 'On SVHN … the padding width is 4 pixels'"),
              "train.crop_mode": Cited("edge", f"{_CROPS}: 'fill the padding with the value at the "
                                                "boundary'")}
_CROP_CIFAR = {"train.crop_pad": Cited(4, f"{_CROPS}: 'On … CIFAR10 and CIFAR100 the padding width is 4'"),
               "train.crop_mode": Cited("reflect", f"{_CROPS}: 'reflection at the boundary pixels'"),
               "train.hflip": Cited(True, f"{_CROPS}: 'random horizontal flips on CIFAR'")}

# ------------------------------------------------------------------ Bitterwolf et al. 2020 (chapter 05)
_GOOD = "Bitterwolf et al. 2020, §4.1"
_GOOD_MISSING = ("not in our copy (App. D: optimiser, learning rate, epochs and ramps); ours: the full "
                 "profile's shared recipe")
_GOOD_AUG = {"train.crop_pad": Cited(4, f"{_GOOD}: 'random crops with padding 4'"),
             "train.augment_out": Cited(True, f"{_GOOD}: 'applied to both in- and out-distribution images'")}

# ------------------------------------------------------------------ Chen et al. 2021 (chapter 06)
_ATOM = "Chen et al. 2021, App. B.1"
_ATOM_COMMON = {
    "train.optimizer": Cited("sgd", f"{_ATOM}: 'stochastic gradient descent with Nesterov momentum'"),
    "train.nesterov": Cited(True, f"{_ATOM}: 'Nesterov momentum'"),
    "train.momentum": Cited(0.9, f"{_ATOM}: 'We set momentum 0.9'"),
    "train.weight_decay": Cited(1e-4, f"{_ATOM}: 'ℓ2 weight decay with a coefficient of 10^-4'"),
    "train.lr": Cited(0.1, f"{_ATOM}: 'the initial learning rate of 0.1'"),
    "train.batch_size": Cited(64, f"{_ATOM}: 'batch size 64 for in-distribution data'"),
    "atom.out_ratio": Cited(2.0, f"{_ATOM}: '128 for out-of-distribution data' (64 in)"),
    "train.crop_pad": Cited(4, f"{_ATOM}: auxiliary images 'random cropping with padding of 4 pixels'; the "
                               "in-distribution augmentation is not stated, ours: the same"),
    "train.hflip": Cited(True, f"{_ATOM}: 'random horizontal flipping' (auxiliary; in-distribution: ours)"),
    "train.augment_out": Cited(True, f"{_ATOM}: 'For each auxiliary OOD dataset, we use random cropping'"),
}
_ATOM_CIFAR = {"train.epochs": Cited(100, f"{_ATOM}: 'for CIFAR-10 and CIFAR-100 … 100 epochs'"),
               "train.lr_milestones": Cited((0.5, 0.75, 0.9), f"{_ATOM}: 'decays by 0.1 at 50, 75, 90 "
                                                                "epoch'")}
_ATOM_SVHN = {"train.epochs": Cited(20, f"{_ATOM}: 'for SVHN, we train the networks for 20 epochs'"),
              "train.lr_milestones": Cited((0.5, 0.75, 0.9), f"{_ATOM}: 'decays by 0.1 at 10, 15, 18 epoch'")}
_ATOM_Q = "Chen et al. 2021, §5.1 'Hyperparameters'"


def _s(key: str, chapter: str, paper: str, reproduces: str, dataset: str, arch: str, methods: tuple[str, ...],
       *parts: Mapping[str, Cited], pool: str | None = None) -> PaperSetting:
    # every setting names the pool (only OE, CCU, GOOD, NTOM and ATOM train on it: CEDA and ACET on noise),
    # so a plain model of two settings with one recipe is one zoo model
    leaves: dict[str, Cited] = {**_split_sizes(dataset), **_POOL_LEAVES}
    for part in parts:
        leaves.update(part)
    return PaperSetting(key, chapter, paper, reproduces, dataset, arch, methods, leaves, pool)


_HEIN_METHODS = ("plain", "ceda", "acet")
_GOOD_METHODS = ("plain", "oe", "good")
_ATOM_METHODS = ("plain", "oe", "ntom", "atom")
_CCU_METHODS = ("plain", "oe", "ccu")
_POOL = "an 80 Million Tiny Images stand-in (the 300K random images, oodlib.datasets.load_random_300k)"
#: the auxiliary pool of every setting that trains on one (80M Tiny Images is withdrawn)
_POOL_LEAVES = {
    "train.pool": Cited("random_300k", "the papers train on 80 Million Tiny Images (Hein et al. 2019 §4, "
                                       "Meinke & Hein 2020 §4, Bitterwolf et al. 2020 §4.1, Chen et al. "
                                       "2021 §5.1), withdrawn by its authors; ours: Outlier Exposure's 300K "
                                       "random images, its published subset"),
    "train.aux_size": Cited(300000, "not stated as a number (the papers sample all of 80M Tiny Images); "
                                    "ours: all of the 300K random images"),
}

#: every paper setting, by key, in chapter order
SETTINGS: dict[str, PaperSetting] = {s.key: s for s in [
    _s("hein-mnist", "01", "Hein et al. 2019", "Tables 1-2, MNIST", "mnist", "lenet", _HEIN_METHODS,
       _HEIN_COMMON, _ADAM_MNIST, {"train.crop_pad": Cited(2, "App. F: random crops, padding not stated; "
                                                          "ours: 2 (Meinke & Hein App. C.1, same group)")}),
    _s("hein-svhn", "01", "Hein et al. 2019", "Tables 1-2, SVHN", "svhn", "resnet18", _HEIN_METHODS,
       _HEIN_COMMON, _HEIN_SGD),
    _s("hein-cifar10", "01", "Hein et al. 2019", "Tables 1-2, CIFAR-10", "cifar10", "resnet18", _HEIN_METHODS,
       _HEIN_COMMON, _HEIN_SGD, {"train.hflip": Cited(True, f"{_HEIN}: 'random mirroring for CIFAR-10'")}),
    _s("hein-cifar100", "01", "Hein et al. 2019", "Tables 1-2, CIFAR-100", "cifar100", "resnet18",
       _HEIN_METHODS, _HEIN_COMMON, _HEIN_SGD,
       {"train.hflip": Cited(True, f"{_HEIN}: 'random mirroring for … CIFAR-100'"),
        "train.lr": Cited(0.1, "not stated for CIFAR-100 ('0.1 for SVHN/CIFAR-10'); ours: the same")}),
    _s("odin-cifar10-densenet", "03", "Liang et al. 2018", "Table 2, Dense-BC / CIFAR-10", "cifar10",
       "densenet_bc", ("plain",), _ODIN_COMMON, _DENSENET),
    _s("odin-cifar100-densenet", "03", "Liang et al. 2018", "Table 2, Dense-BC / CIFAR-100", "cifar100",
       "densenet_bc", ("plain",), _ODIN_COMMON, _DENSENET),
    _s("odin-cifar10-wrn", "03", "Liang et al. 2018", "Table 2, WRN-28-10 / CIFAR-10", "cifar10",
       "wrn_28_10", ("plain",), _ODIN_COMMON, _WRN),
    _s("odin-cifar100-wrn", "03", "Liang et al. 2018", "Table 2, WRN-28-10 / CIFAR-100", "cifar100",
       "wrn_28_10", ("plain",), _ODIN_COMMON, _WRN),
    _s("ccu-mnist", "04", "Meinke & Hein 2020", "Tables 1-2, MNIST", "mnist", "lenet", _CCU_METHODS,
       _CCU_COMMON, _ADAM_MNIST, _CROP_28, pool=_POOL),
    _s("ccu-svhn", "04", "Meinke & Hein 2020", "Tables 1-2, SVHN", "svhn", "resnet18", _CCU_METHODS,
       _CCU_COMMON, _CCU_SGD, _CROP_SVHN, pool=_POOL),
    _s("ccu-cifar10", "04", "Meinke & Hein 2020", "Tables 1-2, CIFAR-10", "cifar10", "resnet18", _CCU_METHODS,
       _CCU_COMMON, _CCU_SGD, _CROP_CIFAR, pool=_POOL),
    _s("ccu-cifar100", "04", "Meinke & Hein 2020", "Tables 1-2, CIFAR-100", "cifar100", "resnet18",
       _CCU_METHODS, _CCU_COMMON, _CCU_SGD, _CROP_CIFAR, pool=_POOL),
    _s("good-mnist", "05", "Bitterwolf et al. 2020", "Table 1, MNIST", "mnist", "good_l", _GOOD_METHODS,
       _GOOD_AUG, {"good.eps": Cited(0.3, f"{_GOOD}: 'ε = 0.3 for MNIST'"),
                   "good.kappa": Cited(0.3, f"{_GOOD}: 'κ = 0.3 for MNIST'"),
                   "train.epochs": Cited(100, _GOOD_MISSING)}, pool=_POOL),
    _s("good-svhn", "05", "Bitterwolf et al. 2020", "Table 1, SVHN", "svhn", "good_xl", _GOOD_METHODS,
       _GOOD_AUG, {"good.eps": Cited(0.03, f"{_GOOD}: 'ε = 0.03 for SVHN'"),
                   "good.kappa": Cited(1.0, f"{_GOOD}: 'κ = 1 for SVHN and CIFAR-10'"),
                   "train.autoaugment": Cited("svhn", f"{_GOOD}: 'the quite aggressive augmentation "
                                                      "AutoAugment' (the SVHN policy: ours)"),
                   "train.epochs": Cited(100, _GOOD_MISSING)}, pool=_POOL),
    _s("good-cifar10", "05", "Bitterwolf et al. 2020", "Table 1, CIFAR-10", "cifar10", "good_xl",
       _GOOD_METHODS, _GOOD_AUG,
       {"good.eps": Cited(0.01, f"{_GOOD}: 'ε = 0.01 for CIFAR-10'"),
        "good.kappa": Cited(1.0, f"{_GOOD}: 'κ = 1 for SVHN and CIFAR-10'"),
        "train.autoaugment": Cited("cifar10", f"{_GOOD}: 'AutoAugment' (the CIFAR-10 policy: ours)"),
        "train.hflip": Cited(True, f"{_GOOD}: 'random horizontal flips for CIFAR-10'"),
        "train.epochs": Cited(100, _GOOD_MISSING)}, pool=_POOL),
    _s("atom-svhn", "06", "Chen et al. 2021", "Tables 1-2, SVHN", "svhn", "densenet_bc", _ATOM_METHODS,
       _ATOM_COMMON, _ATOM_SVHN, {"atom.q": Cited(0.0, f"{_ATOM_Q}: 'q = 0 for SVHN'")}, pool=_POOL),
    _s("atom-cifar10", "06", "Chen et al. 2021", "Tables 1-2, CIFAR-10", "cifar10", "densenet_bc",
       _ATOM_METHODS, _ATOM_COMMON, _ATOM_CIFAR,
       {"atom.q": Cited(0.125, f"{_ATOM_Q}: 'q = 0.125 for CIFAR-10'")}, pool=_POOL),
    _s("atom-cifar100", "06", "Chen et al. 2021", "Tables 1-2, CIFAR-100", "cifar100", "densenet_bc",
       _ATOM_METHODS, _ATOM_COMMON, _ATOM_CIFAR,
       {"atom.q": Cited(0.5, f"{_ATOM_Q}: 'q = 0.5 for CIFAR-100'")}, pool=_POOL),
]}


def for_chapter(chapter: str) -> list[PaperSetting]:
    """The paper settings of one chapter (``"03"``; ``"05b"`` has none of its own), in :data:`SETTINGS`
    order."""
    if not isinstance(chapter, str) or not chapter[:2].isdigit():
        raise ValueError(f"expected a chapter number such as '03', got {chapter!r}")
    return [s for s in SETTINGS.values() if s.chapter == chapter]


def get(key: str) -> PaperSetting:
    """The paper setting called ``key`` (a key of :data:`SETTINGS`)."""
    return SETTINGS[check_choice(key, list(SETTINGS), "paper setting")]


def table() -> pd.DataFrame:
    """Every recipe value of every setting with its citation (setting, leaf, value, the paper's words)."""
    return pd.DataFrame([{"setting": s.key, "chapter": s.chapter, "data set": s.dataset, "network": s.arch,
                          "leaf": leaf, "value": c.value, "source": c.cite}
                         for s in SETTINGS.values() for leaf, c in s.leaves.items()])
