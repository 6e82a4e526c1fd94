"""The ``scribbleseg data`` group: its commands (stats, synth, simulate-scribbles, convert-*) and the annotation
importers (import-cvat, import-labelstudio), two modules of one group.

May import what any command module may; the modules import each other only inside this folder.
"""
