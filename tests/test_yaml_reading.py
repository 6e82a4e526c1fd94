"""``scribbleseg.yaml_reading``: a duplicated key is an error naming the key, its line and the file
(PyYAML alone keeps the last value silently); everything else reads like ``yaml.safe_load``."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.errors import ConfigError, DataError
from scribbleseg.yaml_reading import load_yaml_text, read_yaml_file

NESTED = """\
optim:
  lr: 0.001
  weight_decay: 0.01
  lr: 0.1
"""


def test_duplicate_top_level_key_names_key_lines_and_source():
    with pytest.raises(ConfigError) as caught:
        load_yaml_text("a: 1\nb: 2\na: 3\n", "cfg.yaml", ConfigError)
    message = str(caught.value)
    assert message.startswith("cfg.yaml:") and "duplicate key 'a'" in message
    assert "line 3" in message and "line 1" in message


def test_duplicate_nested_key_is_named_with_its_path():
    with pytest.raises(DataError, match=r"duplicate key 'optim\.lr' at line 4 \(first at line 2\)"):
        load_yaml_text(NESTED, "x.yaml", DataError)


def test_duplicates_inside_lists_and_equal_values_spelled_differently_are_found():
    with pytest.raises(ConfigError, match=r"'items\[1\]\.k' at line 4"):
        load_yaml_text("items:\n  - {k: 1}\n  - k: 1\n    k: 2\n", "x.yaml", ConfigError)
    with pytest.raises(ConfigError, match=r"duplicate key '1' at line 2"):
        load_yaml_text("1: a\n0x1: b\n", "x.yaml", ConfigError)


def test_merge_keys_may_be_overridden_and_results_match_safe_load():
    text = "base: &b {lr: 1, wd: 2}\nrun:\n  <<: *b\n  lr: 3\nlist: [1, 2]\nempty:\n"
    assert load_yaml_text(text, "x.yaml", ConfigError) == yaml.safe_load(text)
    assert load_yaml_text(text, "x.yaml", ConfigError)["run"] == {"lr": 3, "wd": 2}
    assert load_yaml_text("", "x.yaml", ConfigError) is None


def test_recursive_aliases_terminate():
    loaded = load_yaml_text("a: &x [1, *x]\n", "x.yaml", ConfigError)
    assert loaded["a"][1] is loaded["a"]


def test_invalid_yaml_and_unreadable_files_raise_the_callers_error(tmp_path):
    with pytest.raises(DataError, match=r"x\.yaml is not valid YAML"):
        load_yaml_text("a: [1, 2\n", "x.yaml", DataError)
    with pytest.raises(ConfigError, match=r"unsafe python tag|could not determine a constructor"):
        load_yaml_text("a: !!python/object/apply:os.system [echo]\n", "x.yaml", ConfigError)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bin\.yaml is not UTF-8 text"):
        read_yaml_file(binary, ConfigError)
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.yaml"):
        read_yaml_file(tmp_path / "missing.yaml", ConfigError)
    good = tmp_path / "good.yaml"
    good.write_text(NESTED.replace("  lr: 0.1\n", ""))
    assert read_yaml_file(good, ConfigError) == {"optim": {"lr": 0.001, "weight_decay": 0.01}}


def test_data_stats_rejects_a_dataset_yaml_with_a_duplicated_key(tmp_path):
    root = tmp_path / "ds"
    (root / "images" / "train").mkdir(parents=True)
    (root / "scribbles" / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "images" / "train" / "a.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "scribbles" / "train" / "a.png")
    (root / "dataset.yaml").write_text("class_names: [background, cat]\nignore_index: 255\n"
                                       "class_names: [background, cat, dog]\n")
    result = CliRunner().invoke(app, ["data", "stats", str(root)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "dataset.yaml" in lines[0] and "duplicate key 'class_names' at line 3" in lines[0], lines[0]
