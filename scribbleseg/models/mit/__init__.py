"""The Mix Transformer (MiT-B0...B5) encoder family: blocks, variants and its weight key layouts.

May import: models (root modules: stage_settings, weight_init, weights.layouts).
"""
