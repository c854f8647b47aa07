"""Classic models in numpy/scipy/numba: baselines, neighbourhood, matrix factorisation,
implicit-feedback ranking."""
