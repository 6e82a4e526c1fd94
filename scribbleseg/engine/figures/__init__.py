"""Figures: training curves of a run folder and overlay grids of predictions.

May import: engine.inference, engine.prediction (palettes), engine.runs, engine.build, data.
"""
