"""Conditioning encoders behind one interface, and the feature cache."""
from engine.features.base import FeatureEncoder, VideoFeatures, sync_segment_starts
from engine.features.cache import FeatureCache
from engine.features.starter import StarterEncoder

__all__ = ["FeatureCache", "FeatureEncoder", "StarterEncoder", "VideoFeatures",
           "sync_segment_starts"]
