"""Prediction of image files: label PNGs, overlays (with a legend), probabilities, palettes; never writes over
its inputs.

May import: engine.inference, engine.runtime, methods, data. Never imports evaluation or training.
"""
