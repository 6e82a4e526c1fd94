"""The ResNet-50/101 encoder family (dilated, output stride 8/16/32): blocks, variants, its weight key layouts
and its declaration (``family.py``: settings, builder, layouts).

May import: models (root modules: declarations, settings_base, stage_settings, weight_init, weights.layouts).
"""
