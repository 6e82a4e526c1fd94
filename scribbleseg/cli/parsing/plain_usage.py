"""Usage lines that name arguments the usual way: ``scribbleseg train [OPTIONS] CONFIG``.

typer 0.29 draws a required argument as ``{config}`` in the usage line, which reads like a template
placeholder. :class:`PlainUsageCommand` draws it as ``CONFIG`` (optional: ``[NAME]``, several:
``NAME...``); :func:`use_plain_usage` gives every command of an app, sub-groups included, that class, and
click's plain help layout instead of typer's rich panels: rich squeezes the option table of a command with
many options into an 80-column terminal by cutting option names and words off with "…" (``eval --help``
showed ``--no-source-ta…`` and ``eval.class_sourc…``); click's layout wraps at the terminal's width (at
most 80 columns) and never cuts a word.
"""

from __future__ import annotations

import inspect

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
    """Give every registered command of ``app`` (and of its sub-groups) :class:`PlainUsageCommand` and the
    plain help layout (see the module docstring)."""
    app.rich_markup_mode = None  # type: ignore[assignment]
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):  # a command that chose its own class keeps it
            info.cls = PlainUsageCommand
        if info.short_help is None:  # a group's listing shows the whole first paragraph, wrapped, not "..."
            doc = info.help or inspect.getdoc(info.callback) or ""
            info.short_help = " ".join(doc.split("\n\n")[0].split()) or None
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_plain_usage(group.typer_instance)
