"""Deployment formats beside the engine: ONNX export and an ONNX Runtime model behind the inference protocol.

May import: methods, models, data, the root modules. Never imports the engine's training.
"""
