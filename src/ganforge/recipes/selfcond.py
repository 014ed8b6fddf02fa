"""Self-conditioned GAN for unlabelled images: the class-conditional DCGAN trained on clusters of the data.

A plain unconditional GAN on a folder with clusters (digits, kinds of objects) either places
samples between them or, with an InfoGAN code, shrinks each cluster to one prototype (RESULTS).
Self-conditioned GANs (Liu et al., "Diverse Image Generation via Self-Conditioned GANs", CVPR 2020)
give the generator the data's structure without labels: cluster the training images, then train a
class-conditional GAN on the cluster ids. Here the clusters are fixed before training (k-means on
the images downsampled and reduced by PCA, no labels and no pretrained network involved), where
the paper re-clusters the discriminator's features during training.

* A folder that has classes (first-level subfolders) keeps them: this is then the cGAN on its labels
  (``clusters.use_labels=false`` clusters it anyway).
* Fakes follow the real batch's cluster mix in training; a draw without ``--label`` picks clusters in
  proportion to their sizes (``DataSpec.class_prior``), so the samples cover the clusters as the data does.
* ``clusters.k`` (0: about one cluster per ``clusters.per_cluster`` images, 2 to ``clusters.max_k``).
* The measures ignore the cluster ids: they are no classes a judge could read.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..config import TrainConfig, config_section
from ..data import Dataset, DataSpec
from .base import RECIPES
from .conditional import ConditionalGAN

# steps_from_data: ~2.5 min at 16 px, ~5 at 32, ~8 at 64, ~15 at 128 (2-core AMD EPYC, batch 64, width 32)
STEPS_BY_SIDE = {8: 3000, 16: 3000, 32: 1500, 64: 600, 128: 300}
CLUSTER_CHECKS = {
    "k": (lambda v: v == 0 or v >= 2, "0 (from the number of images) or an integer >= 2"),
    "per_cluster": (lambda v: v >= 1, "an integer >= 1"),
    "max_k": (lambda v: v >= 2, "an integer >= 2"),
    "side": (lambda v: 4 <= v <= 64, "an integer in 4..64 (the side images are clustered at)"),
    "pca": (lambda v: v >= 2, "an integer >= 2"),
}


@config_section("clusters", CLUSTER_CHECKS)
@dataclass
class ClusterConfig:
    k: int = 0  # clusters; 0: len(data) // per_cluster, clamped to 2..max_k
    per_cluster: int = 50
    max_k: int = 50
    side: int = 8  # images are area-downsampled to side x side before PCA: coarse shape, not texture
    pca: int = 32  # dimensions k-means sees
    use_labels: bool = True  # False: cluster even data that has classes (a folder's subfolders, digits)


def cluster_count(n: int, cfg: ClusterConfig) -> int:
    return cfg.k or int(min(max(n // cfg.per_cluster, 2), cfg.max_k))


def cluster_images(x: torch.Tensor, cfg: ClusterConfig, seed: int) -> torch.Tensor:
    """[N, C, H, W] images in [0, 1] -> [N] cluster ids in 0..k-1, numbered by decreasing cluster size.
    Deterministic for a seed (so a resumed run gets the same clusters)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    k = min(cluster_count(len(x), cfg), len(x))
    small = F.adaptive_avg_pool2d(x.float(), min(cfg.side, x.shape[-1])).flatten(1).double().numpy()
    dims = min(cfg.pca, *small.shape)
    feats = PCA(dims, random_state=seed, svd_solver="full").fit_transform(small)
    ids = KMeans(k, n_init=4, random_state=seed).fit_predict(feats)
    order = np.argsort(-np.bincount(ids, minlength=k), kind="stable")  # id 0 = the largest cluster
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return torch.from_numpy(rank[ids])


@RECIPES.register("selfcond")
class SelfConditionedGAN(ConditionalGAN):
    """Liu et al. 2020: a cGAN on k-means clusters of unlabelled images (on the classes of labelled ones)."""

    # the folder default: far ahead of the plain DCGAN on a folder with clusters (digits: 93 % of samples a clear
    # digit against 63 %), level or behind it on folders without them (faces, shape scenes); RESULTS
    default_for: ClassVar[tuple[str, ...]] = ("folder",)
    # 16 px at most from the data: at 32 px this width-32 DCGAN is far weaker in the minutes the default
    # takes on a CPU (shapes scenes: fd 0.55 / coverage 0.06 at 32 px against 0.23 / 0.66 at 16, RESULTS)
    max_side_from_data: ClassVar[int] = 16
    why_default: ClassVar[str] = ("a class-conditional DCGAN on the folder's classes, or on k-means clusters of the "
                                  "images when it has none (--recipe to choose another)")
    mode = "concat"

    @classmethod
    def prepare_data(cls, cfg: TrainConfig, data: Dataset) -> Dataset:
        clustered = data.y is None or not cfg.sections["clusters"].use_labels
        if clustered:
            labels = cluster_images(data.x, cfg.sections["clusters"], cfg.seed)
            names = [f"cluster{i}" for i in range(int(labels.max()) + 1)]
        else:
            labels, names = data.y, list(data.class_names)
        prior = torch.bincount(labels, minlength=len(names)).double()
        info = {**data.info, "class_prior": (prior / prior.sum()).tolist(), "clustered": clustered}
        return replace(data, y=labels, class_names=names, info=info)

    @classmethod
    def steps_from_data(cls, cfg: TrainConfig) -> int:
        """3,000 steps at 16 px down to 300 at 128 (about 2, 5, 8 and 15 minutes on 2 CPU cores: a step costs
        about 5x more per doubling of the side)."""
        return STEPS_BY_SIDE.get(cfg.resolution, 300)  # sides beyond 128 px: the least

    @classmethod
    def fine_tune_values(cls, cfg: TrainConfig, spec: DataSpec) -> dict:
        values = super().fine_tune_values(cfg, spec)
        values["clusters"] = {**values.get("clusters", {}), "k": spec.num_classes}  # one per class of the source
        return values

    @property
    def labels_are_classes(self) -> bool:
        return not self.data.clustered  # cluster ids are no classes a judge could read
