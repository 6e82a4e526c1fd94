"""scribbleseg: scribble-supervised semantic segmentation with prototype-based feature augmentation.

Layers (each imports only the ones below it)::

    cli  ->  engine  ->  pfa  ->  models
                     \\->  data   (beside models; neither imports the other)

``scribbleseg.errors`` sits under all of them.
"""

import os as _os

# albumentations asks PyPI for a newer version when it is imported (a network request on every start,
# a warning on offline machines) unless NO_ALBUMENTATIONS_UPDATE is set. Every module of the package is
# imported after this file, so setting it here covers scribbleseg.data.transforms and any future
# importer; setdefault keeps a value the user chose.
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
