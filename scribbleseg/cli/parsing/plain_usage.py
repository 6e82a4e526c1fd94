"""Usage lines that name arguments the usual way: ``scribbleseg train [OPTIONS] CONFIG``.

typer 0.29 draws a required argument as ``{config}`` in the usage line, which reads like a template
placeholder. :class:`PlainUsageCommand` draws it as ``CONFIG`` (optional: ``[NAME]``, several:
``NAME...``); :func:`use_plain_usage` gives every command of an app, sub-groups included, that class.
"""

from __future__ import annotations

import typer
from typer.core import TyperArgument, TyperCommand


class PlainUsageCommand(TyperCommand):
    """A typer command whose usage line names arguments in capitals, without braces."""

    def collect_usage_pieces(self, ctx):  # type: ignore[no-untyped-def]  # noqa: D102 - click API
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not isinstance(param, TyperArgument):
                pieces.extend(param.get_usage_pieces(ctx))
                continue
            name = param.metavar or (param.name or "").upper()
            name = name if param.required else f"[{name}]"
            pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


def use_plain_usage(app: typer.Typer) -> None:
    """Give every registered command of ``app`` (and of its sub-groups) :class:`PlainUsageCommand`."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):  # a command that chose its own class keeps it
            info.cls = PlainUsageCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_plain_usage(group.typer_instance)
