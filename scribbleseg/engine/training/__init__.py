"""The trainer (one readable loop: AMP, DDP, exact resume, validation, signals), its optimiser / schedule and
the run's length in iterations (epochs, epoch intervals, the method's warm-up fitted to the run).

Sits on top of the engine: may import every other engine room.
"""
