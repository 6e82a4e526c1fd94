"""Loading a trained model for inference: a checkpoint (``.safetensors``) or an exported ``.onnx`` model,
behind the one inference protocol (:class:`scribbleseg.engine.inference.model.InferenceModel`).

May import: engine.inference, engine.runs (and below them), engine.runtime, deploy, methods, data.
"""
