"""Turn a pretrained-weights spec into a local path: a Hugging Face Hub id becomes its cached snapshot folder.

``resolve_weights_path(spec)`` is what every weight loader calls first:

* an existing file or folder is returned as is (a path that exists always wins over a Hub id);
* an ``owner/name`` Hub id (``nvidia/mit-b1``, ``microsoft/resnet-101``) is downloaded with
  ``huggingface_hub`` into its standard cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
  ``~/.cache/huggingface/hub``) and the snapshot folder is returned;
* anything else is returned as a path, so the loader reports "weight file not found" for it.

Only weight and config files are fetched, from the top level of the repository: ``*.json`` and
``*.safetensors``, or ``pytorch_model.bin`` when the repository holds no safetensors. Nothing is
executed; the loader reads pickles with ``weights_only=True``. The resolution knows nothing about the
backbone: it only turns an id into a folder.

Offline (``HF_HUB_OFFLINE=1``) only the cache is read (no connection is attempted); without a network
``huggingface_hub`` gives up after its connection timeout and the cache is read. A missing id then raises
one :class:`~scribbleseg.errors.WeightsError` saying how to fetch the files on another machine
(``scribbleseg weights fetch ID --to DIR``). ``huggingface_hub`` is imported only when an id is resolved,
so ``import scribbleseg.models`` stays cheap.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from scribbleseg.errors import WeightsError

CONFIG_AND_SAFETENSORS = ("*.json", "*.safetensors")
PICKLE_WEIGHTS = ("pytorch_model.bin",)
_TOP_LEVEL_ONLY = ("*/*",)  # fnmatch's ``*`` crosses ``/``: keep sub-folders (onnx/, tf/, ...) out

# The Hub's repo-id rule: word characters, ``-`` and ``.``, starting and ending with a word character,
# no ``--`` or ``..``, at most 96 characters; scribbleseg requires the ``owner/`` part.
_HUB_ID = re.compile(r"\w(?:[\w.-]*\w)?/\w(?:[\w.-]*\w)?", re.ASCII)
_HUB_ID_MAX_LENGTH = 96
# A name ending like a weight file is a mistyped local path, not a repository.
_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt", ".json", ".pkl", ".h5")
_TRUE = {"1", "ON", "YES", "TRUE"}


def is_hub_id(spec: str) -> bool:
    """``True`` for an ``owner/name`` Hugging Face Hub repository id such as ``nvidia/mit-b1``."""
    return (len(spec) <= _HUB_ID_MAX_LENGTH and _HUB_ID.fullmatch(spec) is not None
            and "--" not in spec and ".." not in spec and not spec.lower().endswith(_FILE_SUFFIXES))


def hub_cache_dir() -> Path:
    """The Hub cache folder as ``huggingface_hub`` defines it, read from the environment at call time.

    (``huggingface_hub.constants`` freezes these variables when the library is first imported.)
    """
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, now or when the library was imported."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in _TRUE or bool(constants.HF_HUB_OFFLINE)


def resolve_weights_path(spec: str | os.PathLike[str]) -> Path:
    """A local path for ``spec``: the path itself if it exists or is no Hub id, else the Hub snapshot folder."""
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.exists() or not is_hub_id(text):
        return path
    return download_hub_weights(text)


def weight_files_in(folder: Path) -> list[Path]:
    """The files of ``folder`` that make up the weights: top-level ``*.json`` plus ``*.safetensors``,
    or ``pytorch_model.bin`` when there is no safetensors file (none when ``folder`` does not exist)."""
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    safetensors = [p for p in files if p.name.endswith(".safetensors")]
    weights = safetensors or [p for p in files if p.name in PICKLE_WEIGHTS]
    return sorted([p for p in files if p.suffix == ".json"] + weights)


def download_hub_weights(repo_id: str) -> Path:
    """The local snapshot folder of Hub repository ``repo_id`` (weights + configs), downloaded if needed.

    Raises :class:`WeightsError` when the repository cannot be found, the Hub cannot be reached and the
    cache does not hold it, or it holds no weight file.
    """
    offline = hub_offline()
    try:
        folder = _snapshot(repo_id, CONFIG_AND_SAFETENSORS, offline)
        if not any(p.name.endswith(".safetensors") for p in weight_files_in(folder)):
            folder = _snapshot(repo_id, PICKLE_WEIGHTS, offline)
    except Exception as err:  # network, Hub and cache failures all become one user-facing message
        raise _explain(repo_id, err, offline) from err
    if not any(p.suffix in (".safetensors", ".bin") for p in weight_files_in(folder)):
        names = ", ".join(sorted(p.name for p in folder.iterdir())) if folder.is_dir() else ""
        where = "the cached snapshot" if offline else "Hugging Face repository"
        raise WeightsError(f"{where} {repo_id} ({folder}) holds no *.safetensors or pytorch_model.bin at its top "
                           f"level (files: {names or 'none'})" + (f": {_fetch_hint(repo_id)}" if offline else ""))
    return folder


def _snapshot(repo_id: str, patterns: tuple[str, ...], offline: bool) -> Path:
    """One ``snapshot_download`` of the files matching ``patterns`` into :func:`hub_cache_dir`."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, cache_dir=hub_cache_dir(), allow_patterns=list(patterns),
                                  ignore_patterns=list(_TOP_LEVEL_ONLY), local_files_only=offline))


def _explain(repo_id: str, err: Exception, offline: bool) -> WeightsError:
    """The :class:`WeightsError` for a failed download of ``repo_id``: what happened and how to fetch it."""
    from huggingface_hub.utils import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    fetch = _fetch_hint(repo_id)
    if isinstance(err, GatedRepoError):
        return WeightsError(f"Hugging Face repository {repo_id} is gated: accept its terms on "
                            f"https://huggingface.co/{repo_id} and log in with `hf auth login`, or {fetch}")
    if isinstance(err, RepositoryNotFoundError):
        return WeightsError(f"{repo_id} is not a local file or folder, nor a repository on the Hugging Face "
                            f"Hub (a typo, or a private repository: log in with `hf auth login`)")
    cache = f"Hugging Face cache (HF_HUB_CACHE={hub_cache_dir()})"
    if isinstance(err, LocalEntryNotFoundError):
        reason = "offline: HF_HUB_OFFLINE=1" if offline else "no connection"
        return WeightsError(f"{repo_id} is not a local file or folder, nor (completely) in the {cache}, and "
                            f"the Hub cannot be reached ({reason}): {fetch}")
    detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return WeightsError(f"cannot download {repo_id} from the Hugging Face Hub into the {cache} "
                        f"({type(err).__name__}: {detail}): check the connection, or {fetch}")


def _fetch_hint(repo_id: str) -> str:
    """How to bring ``repo_id`` to a machine without internet."""
    return (f"on a machine with internet run `scribbleseg weights fetch {repo_id} --to DIR` (or "
            f"`hf download {repo_id} --local-dir DIR`), copy DIR here and set model.pretrained=DIR")
