"""Late fusion of experiments' class probabilities: weighted averaging and stacking, chosen on validation."""
