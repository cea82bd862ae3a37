"""subnetbench methods: a registry of subnetwork-extraction methods.

>>> from subnetbench import methods
>>> methods.names()  # doctest: +NORMALIZE_WHITESPACE
['aslp', 'biprop', 'dense', 'edge_popup', 'iterand', 'magnitude_pruning', 'probmask',
 'random_pruning', 'supermask']
>>> Method = methods.get("aslp")
>>> method = Method(smart_rescale=True)
>>> method.traits().rescaling
'smart_rescale'

The contract is ``methods/base.py`` (docs/plugins.md); the masked layers are ``methods/layers.py``,
option checks ``methods/options.py``, the bases ``methods/scored.py`` and
``methods/weight_training.py``.
"""
from subnetbench.methods.base import (
                          FAMILIES,
                          MASK_ONLY,
                          WEIGHT_TRAINING,
                          Method,
                          MethodTraits,
                          OptimizerSpec,
                          SparsityStats,
                          StepProgress,
)
from subnetbench.methods.layers import (
                          MaskedLayer,
                          count_nonzero_weights,
                          masked_layers,
                          noise_drawn_ahead,
                          set_mask_sampling,
                          trainable_tensor_names,
)
from subnetbench.methods.options import OptionError, check_option
from subnetbench.methods.registry import (
                          ENTRY_POINT_GROUP,
                          RegistryError,
                          UnknownMethodError,
                          get,
                          names,
                          origin,
                          refresh,
)

__all__ = ["ENTRY_POINT_GROUP", "FAMILIES", "MASK_ONLY", "WEIGHT_TRAINING", "MaskedLayer", "Method",
           "MethodTraits", "OptimizerSpec", "OptionError", "RegistryError", "SparsityStats",
           "StepProgress", "UnknownMethodError", "check_option", "count_nonzero_weights", "get",
           "masked_layers", "names", "noise_drawn_ahead", "origin", "refresh", "set_mask_sampling",
           "trainable_tensor_names"]
