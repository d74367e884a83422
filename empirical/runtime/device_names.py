"""The device names a user may ask for (``--device``, ``resolve_device``).

Kept apart from :mod:`.device`, which imports torch, so that the command line can offer
them without importing torch (``semirobust theory`` never does).
"""

#: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
DEVICE_CHOICES = ("auto", "cpu", "cuda")
