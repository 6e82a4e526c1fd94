"""Parse an annotation XML file without trusting it: no DTD, no entities.

Annotation exports (ScribbleSup, CVAT) never need a ``<!DOCTYPE>``; a file that declares one is
refused before any entity could be expanded (billion-laughs, external entities). The tree is built
with expat's public handlers feeding :class:`xml.etree.ElementTree.TreeBuilder`, so the result is an
ordinary ``ElementTree`` element. Every failure is a :class:`~scribbleseg.errors.DataError` naming
the file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat

from scribbleseg.errors import DataError


class _UnsafeXML(Exception):
    """Raised from an expat handler when the document declares a DTD or an entity."""


def _refuse(*_args) -> None:
    raise _UnsafeXML


def parse_xml_file(path: str | Path, what: str = "XML") -> ET.Element:
    """Root element of the XML file ``path``; DataError when missing, malformed or declaring a DTD."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {what} {path}: {err.strerror or err}") from err
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        return builder.close()
    except _UnsafeXML:
        raise DataError(f"{what} {path} declares a DTD or entities; refused (annotation exports need none)") from None
    except (expat.ExpatError, AssertionError) as err:  # TreeBuilder.close asserts on an empty document
        raise DataError(f"cannot read {what} {path}: not well-formed XML ({err or 'no element'})") from None
