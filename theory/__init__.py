"""semirobust.theory: the definitions, results and judge of THEORY.md, in sympy.

Never imports torch. The API others call:

* :data:`RESULTS` -- name -> :class:`Result` (T1, L1, T2, L2, T3, LIP), each printable with
  ``.text()`` and ``.latex()``;
* :func:`judge` ``(result, measurements, layers=None) -> Verdict`` -- evaluates a result's
  premises and conclusion on :class:`Measurement` objects; :class:`Verdict` has ``status``
  (:class:`Status`: ``holds`` / ``violated`` only on certified or exact evidence,
  ``supported`` / ``contradicted`` when an attack value or an estimate decides, THEORY.md 7),
  ``decided_by`` and ``confidence``, per-premise evidence, ``notes``, ``to_dict()`` and
  ``describe()``;
* :mod:`semirobust.theory.scope` -- the same judgement on the test set, per sample and for
  the population; :mod:`semirobust.theory.units` -- units checked term by term.
"""

from semirobust.theory.judge import judge
from semirobust.theory.measurement import Kind, Measurement
from semirobust.theory.results import RESULTS
from semirobust.theory.statements import Result
from semirobust.theory.verdict import Comparison, Status, Verdict

__all__ = ["RESULTS", "Comparison", "Kind", "Measurement", "Result", "Status", "Verdict", "judge"]
