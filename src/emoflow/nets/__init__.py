"""PyTorch networks and their training helpers (no torchvision: everything here runs
with a CPU-only torch wheel)."""
