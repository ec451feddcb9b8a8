"""Stages: fetch + decode + features (CPU), packed inference, scoring."""
