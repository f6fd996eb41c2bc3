"""Bayesian redundancy: spike-and-slab variational networks (filled in below)."""
