"""scribbleseg.methods: the contract between the engine and a training method, and the pieces every
method shares (partial cross-entropy, regularisers such as the Gated CRF loss, class sources).

Layer: imports ``scribbleseg.models`` (and ``errors`` / ``atomic_files``) only; ``scribbleseg.pfa``
builds PFA on top of it and the engine drives every method through it (docs/ARCHITECTURE.md).
"""
