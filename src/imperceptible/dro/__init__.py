"""DRO training with any attack (the paper's Algorithms 2 and 3) and the k-means cluster-centre cache."""

from .algorithms import WeightedDataset, build_adversarial_dataset, sample_model, weighted_indices
from .kmeans_cache import KMeansCache

__all__ = ["WeightedDataset", "build_adversarial_dataset", "sample_model", "weighted_indices", "KMeansCache"]
