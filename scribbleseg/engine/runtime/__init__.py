"""Process runtime: devices, torch.distributed (DDP), seeding / RNG state, signal handling, torch.compile,
progress bars (live on a terminal, a line now and then in a log).

May import: engine.config (compile settings), the root modules.
"""
