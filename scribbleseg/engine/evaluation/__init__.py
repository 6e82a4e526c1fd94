"""Evaluation against dense masks: confusion matrices, mIoU per head and class source, classifier AP, result tables.

May import: engine.inference, engine.runtime, methods, data. Never imports prediction or training.
"""
