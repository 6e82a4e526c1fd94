"""The Mix Transformer (MiT-B0...B5) encoder family: blocks, variants, its weight key layouts and its
declaration (``family.py``: settings, builder, layouts).

May import: models (root modules: declarations, settings_base, stage_settings, weight_init, weights.layouts).
"""
