"""The model zoo: the paper's architectures in plain torch, as ordered stages.

One module per family; :data:`ZOO_BUILDERS` names each builder, and
:mod:`semirobust.empirical.model` registers them. Their weight-layer counts and valid splits
are tabulated by :mod:`semirobust.empirical.model.zoo.splits` and in ``docs/zoo.md``.
"""

from semirobust.empirical.model.zoo.alexnet import alexnet
from semirobust.empirical.model.zoo.resnet import resnet18, resnet50
from semirobust.empirical.model.zoo.vgg import vgg16_bn
from semirobust.empirical.model.zoo.vit import vit
from semirobust.empirical.model.zoo.wide_resnet import wide_resnet

ZOO_BUILDERS = {
    "alexnet": alexnet,
    "vgg16-bn": vgg16_bn,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "wrn-34-10": wide_resnet,
    "vit": vit,
}
ZOO_ARCHITECTURES = tuple(ZOO_BUILDERS)
