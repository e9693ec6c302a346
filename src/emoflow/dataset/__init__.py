"""The dataset: manifest validation, label spaces, shard assignment."""
