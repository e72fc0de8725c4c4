"""Recommenders that train: the two-tower models (2T, 2T-HGNN) and the HGNN-w-users baseline,
each built from its config section over the networks of :mod:`hgrec.models` and the trainers
of :mod:`hgrec.training`; and the registry that rebuilds any saved model by name."""
