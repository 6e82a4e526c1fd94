"""Annotation importers: ScribbleSup XML, CVAT XML, Label Studio JSON, palette PNGs -> the folder layout's class-id PNGs.

May import: data (root modules), the root modules.
"""
