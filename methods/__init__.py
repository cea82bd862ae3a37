"""subnetbench methods: a registry of subnetwork-extraction methods.

>>> from subnetbench import methods
>>> methods.names()  # doctest: +NORMALIZE_WHITESPACE
['aslp', 'biprop', 'dense', 'edge_popup', 'iterand', 'magnitude_pruning', 'probmask',
 'random_pruning', 'supermask']
>>> Method = methods.get("aslp")
>>> method = Method(smart_rescale=True)

See ``methods/base.py`` for the interface and the README for how to add a method.
"""
from subnetbench.methods.base import (
                          FAMILIES,
                          MASK_ONLY,
                          WEIGHT_TRAINING,
                          Method,
                          OptimizerSpec,
                          OptionError,
                          SparsityStats,
                          StepProgress,
                          count_nonzero_weights,
                          masked_layers,
                          noise_drawn_ahead,
                          set_mask_sampling,
                          trainable_tensor_names,
)
from subnetbench.methods.registry import (
                          ENTRY_POINT_GROUP,
                          RegistryError,
                          UnknownMethodError,
                          get,
                          names,
                          origin,
                          refresh,
)

__all__ = ["ENTRY_POINT_GROUP", "FAMILIES", "MASK_ONLY", "WEIGHT_TRAINING", "Method", "OptimizerSpec",
           "OptionError", "RegistryError", "SparsityStats", "StepProgress", "UnknownMethodError",
           "count_nonzero_weights", "get", "masked_layers", "names", "noise_drawn_ahead", "origin", "refresh",
           "set_mask_sampling", "trainable_tensor_names"]
