"""The built-in end-to-end demo (an application on top of the engine, beside cli).

May import: engine, deploy, pfa, methods, models, data.
"""
