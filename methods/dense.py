"""Dense baseline (docs/methods.md): every weight trained, nothing pruned."""
from __future__ import annotations

from subnetbench.methods.weight_training import WeightTrainingMethod


class Dense(WeightTrainingMethod):
    """Trains ``weight`` and ``bias``; extraction keeps every weight."""

    name = "dense"
