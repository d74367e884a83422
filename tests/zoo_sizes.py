"""Narrow builder options of every zoo architecture: real structure, seconds on a CPU."""

NARROW = {
    "alexnet": {"width": 8},
    "vgg16-bn": {"width": 4, "hidden": 16},
    "resnet18": {"width": 4},
    "resnet50": {"width": 4},
    "wrn-34-10": {"widen_factor": 1},
    "vit": {"depth": 2, "width": 16, "heads": 2, "mlp_width": 32},
}
