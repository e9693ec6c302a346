"""Per-feature classifiers: scikit-learn models on video vectors, torch sequence models on frame sequences."""
