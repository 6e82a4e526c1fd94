"""Pretrained-weight files: reading (.pth / .safetensors / HF folders / Hub ids), key layouts, loading into an encoder with a report.

May import: models (the declared families of ``models.families`` for their encoder classes and layouts).
"""
