"""Command-line interface (typer). The top layer: imports ``engine`` (and ``data`` / ``models`` for the
data and info commands); nothing imports it."""
