"""DRO training with any attack (the paper's Algorithms 2 and 3, in both readings) and the k-means
cluster-centre cache."""

from .algorithms import (
                         READINGS,
                         WEIGHTINGS,
                         WeightedDataset,
                         build_adversarial_dataset,
                         draw,
                         sample_model,
                         weighted_indices,
)
from .kmeans_cache import ATTACKED, FROM_CACHE, NOT_NEEDED, BatchAttacker, KMeansCache

__all__ = ["READINGS", "WEIGHTINGS", "WeightedDataset", "build_adversarial_dataset", "draw", "sample_model",
           "weighted_indices", "ATTACKED", "FROM_CACHE", "NOT_NEEDED", "BatchAttacker", "KMeansCache"]
