"""semirobust.theory: the definitions, results and judge of THEORY.md, in sympy.

Never imports torch.
"""

from semirobust.theory.measurement import Kind, Measurement

__all__ = ["Kind", "Measurement"]
