"""Strict YAML reading for every file the user writes (experiment configs, ``dataset.yaml``).

``yaml.safe_load`` silently keeps the last of two equal keys, so a config with ``lr`` twice trains
with whichever came last. :func:`load_yaml_text` / :func:`read_yaml_file` read like ``safe_load``
(same safe tags, same result) but raise when a mapping repeats a key, naming the key's path, both
lines and the file::

    configs/x.yaml: duplicate key 'optim.lr' at line 7 (first at line 4); keep one of them

Keys merged in with ``<<: *anchor`` may be overridden (that is what merging is for). The caller
chooses the error class: :class:`~scribbleseg.errors.ConfigError` for configs,
:class:`~scribbleseg.errors.DataError` for ``dataset.yaml``. Like ``scribbleseg.errors`` this module
imports nothing else from the package, so every layer can use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from scribbleseg.errors import ScribblesegError

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _key_path(parent: str, part: str) -> str:
    return f"{parent}.{part}" if parent and not part.startswith("[") else parent + part


def _check_unique_keys(loader: yaml.SafeLoader, node: Node, path: str, visited: set[int],
                       source: str, error_class: type[ScribblesegError]) -> None:
    """Walk the composed node graph (aliases visited once) and raise on the first repeated key."""
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _check_unique_keys(loader, item, _key_path(path, f"[{index}]"), visited, source, error_class)
        return
    if not isinstance(node, MappingNode):
        return
    first_lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = first_lines.get(key)
        except TypeError:  # an unhashable key: construct_document reports it
            continue
        line = key_node.start_mark.line + 1
        if first is not None:
            raise error_class(f"{source}: duplicate key '{_key_path(path, str(key))}' at line {line} "
                              f"(first at line {first}); keep one of them")
        first_lines[key] = line
        _check_unique_keys(loader, value_node, _key_path(path, str(key)), visited, source, error_class)


def load_yaml_text(text: str, source: str, error_class: type[ScribblesegError]) -> Any:
    """Parse one YAML document like ``yaml.safe_load``, refusing repeated keys.

    Args:
        text: the YAML text.
        source: what to call it in messages (usually the file path).
        error_class: raised for a repeated key and for invalid YAML (e.g. ``ConfigError``).

    Returns:
        The document (``None`` for an empty one).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_unique_keys(loader, node, "", set(), source, error_class)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise error_class(f"{source} is not valid YAML: {err}") from err
    finally:
        loader.dispose()


def read_yaml_file(path: str | os.PathLike[str], error_class: type[ScribblesegError]) -> Any:
    """Read and parse the UTF-8 YAML file ``path`` with :func:`load_yaml_text`.

    Raises ``error_class`` naming the file when it cannot be read, is not UTF-8, is not valid YAML or
    repeats a key.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise error_class(f"{path} is not UTF-8 text: {err}") from err
    except OSError as err:
        raise error_class(f"cannot read {path}: {err.strerror or err}") from err
    return load_yaml_text(text, str(path), error_class)
