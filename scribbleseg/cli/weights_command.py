"""``scribbleseg weights fetch ID [--to DIR]``: pre-download Hugging Face Hub weights for offline machines.

Without ``--to`` the weight and config files of ``ID`` land in the standard Hugging Face cache and the
snapshot folder is printed (``model.pretrained=ID`` then works offline on this machine). With ``--to``
they are also copied, as plain files (not links into the cache), into ``DIR``: a folder to carry to an
offline cluster and use as ``model.pretrained=DIR``. Under ``HF_HUB_OFFLINE=1`` only the cache is read.
"""

from __future__ import annotations

from pathlib import Path

import typer

from scribbleseg.atomic_files import atomic_copy_file
from scribbleseg.errors import WeightsError

weights_app = typer.Typer(help="Pretrained weights from the Hugging Face Hub.", no_args_is_help=True)


def copy_weight_files(snapshot: Path, destination: Path) -> list[Path]:
    """Copy the weight and config files of ``snapshot`` into ``destination`` as plain files; returns them."""
    from scribbleseg.models.weights.hub import weight_files_in

    if destination.exists() and not destination.is_dir():
        raise WeightsError(f"--to {destination} exists and is not a folder")
    return [atomic_copy_file(source, destination / source.name) for source in weight_files_in(snapshot)]


@weights_app.command("fetch")
def fetch(
    repo_id: str = typer.Argument(..., metavar="ID", help="Hugging Face Hub id, e.g. nvidia/mit-b1."),
    to: Path | None = typer.Option(None, "--to", help="Also copy the files into this plain folder "
                                                     "(use it as model.pretrained=DIR)."),
) -> None:
    """Download the weight + config files of a Hub model into the cache (and into --to DIR)."""
    from scribbleseg.models.weights.hub import download_hub_weights, is_hub_id

    if not is_hub_id(repo_id):
        raise WeightsError(f"{repo_id!r} is not a Hugging Face Hub id (owner/name, e.g. nvidia/mit-b1)")
    snapshot = download_hub_weights(repo_id)
    if to is None:
        typer.echo(str(snapshot))
        return
    copied = copy_weight_files(snapshot, to.expanduser())
    size_mb = sum(p.stat().st_size for p in copied) / 1e6
    typer.echo(f"copied {len(copied)} files ({size_mb:.1f} MB: {', '.join(p.name for p in copied)}) to {to}; "
               f"use model.pretrained={to}")


def register(app: typer.Typer) -> None:
    """Add the ``weights`` command group to ``app``."""
    app.add_typer(weights_app, name="weights")
