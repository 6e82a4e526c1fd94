"""What several commands share: option parsing helpers and plain usage text.

May import: the root modules only (no torch: the CLI's --help stays fast).
"""
