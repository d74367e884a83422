"""semirobust: executable checks of the semirobustness theory (see THEORY.md).

``semirobust.theory`` states the definitions and results symbolically (sympy only);
``semirobust.empirical`` measures every quantity on PyTorch networks.
"""

__version__ = "0.1.0"
