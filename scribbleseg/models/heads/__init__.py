"""Decoders (SegFormer MLP, DeepLabV2, DeepLabV3+) split into ``fuse`` / ``classify``, and the image-level classifier head.

May import: models (root modules).
"""
