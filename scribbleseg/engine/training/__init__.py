"""The trainer (one readable loop: AMP, DDP, exact resume, validation, signals) and its optimiser / schedule.

Sits on top of the engine: may import every other engine room.
"""
