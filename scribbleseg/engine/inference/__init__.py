"""Test-time inference: heads and class sources over views (scales, flip), whole images or sliding windows with bounded memory.

May import: methods, data, the root modules. Imports no config, runs, evaluation, prediction or training.
"""
