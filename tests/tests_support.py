"""Plain data shared by tests that cannot take fixtures (hypothesis strategies)."""

TINY = {
    "name": "tiny",
    "task": "calibration",
    "seeds": [0],
    "dataset": {"name": "digits"},
    "model": {"name": "mlp", "width": 32},
    "train": {"epochs": 3, "lr": 0.01, "batch_size": 64},
    "methods": ["uncalibrated", "temperature"],
}
