"""The evaluation suite: feature extractors, pure metric functions and ``evaluate_samples``."""
from .classes import class_histogram, class_kl, class_metrics
from .evaluate import (
                       HIGHER_IS_BETTER,
                       METRICS,
                       default_features,
                       default_metrics,
                       evaluate_samples,
                       is_better,
                       sample_outputs,
)
from .features import FEATURES, FeatureExtractor, create_extractor, find_inception_weights
from .frechet import FeatureStats, feature_statistics, frechet_distance, frechet_distance_from_stats
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .modes import mode_histogram, mode_metrics
from .prdc import prdc
from .refstats import ReferenceStats, default_cache_dir, reference_stats

__all__ = [
    "FEATURES", "HIGHER_IS_BETTER", "METRICS", "FeatureExtractor", "FeatureStats", "ReferenceStats",
    "class_histogram", "class_kl", "class_metrics", "create_extractor", "default_cache_dir", "default_features",
    "default_metrics", "evaluate_samples", "feature_statistics", "find_inception_weights", "frechet_distance",
    "frechet_distance_from_stats", "inception_score", "is_better", "kernel_inception_distance", "mode_histogram",
    "mode_metrics", "prdc", "reference_stats", "sample_outputs",
]
