"""Example networks: small reference CNNs with their K/R ratio as an argument, and the small nets
the examples, tests, experiments and the CLI train.

* :mod:`redundancy.zoo.classic`: ResNet-20, bottleneck ResNets (up to ResNet-50 size), MobileNetV2-
  and ShuffleNetV2-style models, written here (no torchvision needed), with standard layer names so
  that :func:`redundancy.analyze` finds their blocks; :func:`get_model` builds one by name and
  :func:`default_input_shape` gives the input it is meant for.
* :mod:`redundancy.zoo.small`: :func:`small_cnn`, :func:`simple_cnn` (the CAR experiment's CNN),
  :func:`mlp` (seeded), and, importable from that module, ``plain_cnn`` (seeded, no normalisation,
  for spike-and-slab), ``two_conv_cnn`` and ``mlp_classifier`` (the long-tail experiment's nets).
"""

from redundancy.zoo.classic import (MODELS, BasicBlock, Bottleneck, InvertedResidual, ShuffleUnit,
                                    bottleneck_resnet, channel_shuffle, default_input_shape, get_model,
                                    mobilenet_v2, resnet20, resnet50_sized, shufflenet_v2)
from redundancy.zoo.small import mlp, simple_cnn, small_cnn

__all__ = ["resnet20", "bottleneck_resnet", "resnet50_sized", "mobilenet_v2", "shufflenet_v2", "small_cnn",
           "simple_cnn", "mlp", "get_model", "default_input_shape"]
