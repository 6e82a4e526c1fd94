"""scribbleseg: scribble-supervised semantic segmentation with prototype-based feature augmentation.

Layers (each imports only the ones below it)::

    cli  ->  engine  ->  pfa  ->  models
                     \\->  data   (beside models; neither imports the other)

``scribbleseg.errors`` sits under all of them.
"""

__version__ = "0.1.0"
