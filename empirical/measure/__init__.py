"""Measurements on trained networks, each a :class:`~semirobust.theory.measurement.Measurement`
with its kind, estimator, settings and interval (THEORY.md section 7). Import from the
submodules (this package's ``__init__`` imports nothing, so that low-level modules such as the
attack evaluation can use its statistics without a cycle):

* :func:`gamma_sandwich`: certified lower and attacked upper ``E[inf m]``
  (:mod:`~semirobust.empirical.measure.sandwich`);
* :func:`feature_sensitivity`, :func:`lipschitz_transfer_bound`,
  :func:`lipschitz_margin_lower`: THEORY.md section 5 (:mod:`~semirobust.empirical.measure.transfer`);
* :func:`local_lipschitz_lower`: a witnessed lower bound of the Lipschitz constant;
* :mod:`~semirobust.empirical.measure.linear_readout`: Algorithm S1's least-squares readouts;
* :mod:`~semirobust.empirical.measure.aggregate`, :mod:`~semirobust.empirical.measure.statistics`:
  per-sample values to means with sampling intervals.
"""
