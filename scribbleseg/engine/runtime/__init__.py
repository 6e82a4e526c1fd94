"""Process runtime: devices, torch.distributed (DDP), seeding / RNG state, signal handling, torch.compile.

May import: engine.config (compile settings), the root modules.
"""
