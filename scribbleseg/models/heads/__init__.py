"""Decoders (SegFormer MLP, DeepLabV2, DeepLabV3+) split into ``fuse`` / ``classify``, each declared in its
``<decoder>_family.py`` (settings, builder), and the image-level classifier head.

May import: models (root modules).
"""
