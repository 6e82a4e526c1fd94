"""The ResNet-50/101 encoder family (dilated, output stride 8/16/32): blocks, variants and its weight key layouts.

May import: models (root modules: stage_settings, weight_init, weights.layouts).
"""
