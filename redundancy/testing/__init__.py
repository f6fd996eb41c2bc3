"""Public testing helpers: hypothesis strategies shared by the test suite and by users.

The face is the five strategies of :mod:`redundancy.testing.strategies` (``closed_form_specs`` and
the rest stay importable from that module).
"""

from redundancy.testing.strategies import basic_cnns, conv_layers, linear_cnn_specs, ndims, spatial_shapes

__all__ = ["ndims", "spatial_shapes", "conv_layers", "linear_cnn_specs", "basic_cnns"]
