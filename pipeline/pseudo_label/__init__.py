"""Pseudo-labelling: filters and the kept training set."""
