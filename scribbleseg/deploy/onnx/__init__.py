"""ONNX: export of a method's ``infer`` as a graph, its ``scribbleseg.*`` metadata, and the ONNX Runtime model.

May import: methods, models, data, the root modules.
"""
