"""Test-time inference: the model protocol (InferenceModel), the frozen InferenceSettings, heads and class sources
over views (scales, flip), and the one dispatcher that predicts an image whole or by sliding windows (bounded memory).

May import: methods, data, the root modules. Imports no config, runs, evaluation, prediction or training.
"""
