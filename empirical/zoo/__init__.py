"""The model zoo: the paper's architectures in plain torch, as ordered stages.

Importing this package registers ``alexnet``, ``vgg16-bn``, ``resnet18``, ``resnet50``,
``wrn-34-10`` and ``vit`` with :func:`semirobust.empirical.models.register_architecture`
(one module per family). Their weight-layer counts and valid splits are tabulated by
:mod:`semirobust.empirical.zoo.splits` and in ``docs/zoo.md``.
"""

from semirobust.empirical.zoo import alexnet, resnet, vgg, vit, wide_resnet  # noqa: F401 (registers)

ZOO_ARCHITECTURES = ("alexnet", "vgg16-bn", "resnet18", "resnet50", "wrn-34-10", "vit")
