"""Prediction of image files: label PNGs, overlays, probabilities, palettes; never writes over its inputs.

May import: engine.inference, engine.runtime, methods, data. Never imports evaluation or training.
"""
