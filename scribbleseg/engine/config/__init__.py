"""Experiment configuration: the YAML schema, reading files with ``_base_`` and ``--set``, format migration.

May import: models, methods, pfa, data (their settings classes), the root modules. Imports no other engine room.
"""
