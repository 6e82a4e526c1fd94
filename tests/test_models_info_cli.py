"""``scribbleseg info``: table of parameters / FLOPs, forward check, and clean errors for bad input."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from scribbleseg.cli.app import app
from scribbleseg.models import MixTransformer


def invoke(*args: str):
    return CliRunner().invoke(app, ["info", *args])


def test_info_prints_parameters_flops_and_shapes() -> None:
    result = invoke("--backbone", "mit_b0", "--num-classes", "5", "--size", "64", "--strides", "4,2,2,1")
    assert result.exit_code == 0, result.output
    out = result.output
    for word in ("encoder", "decoder", "total", "GFLOPs", "GMACs"):
        assert word in out
    encoder_row = re.search(r"encoder\s*│\s*([\d.]+)", out)
    assert encoder_row and float(encoder_row.group(1)) == round(3.319392, 3)  # MiT-B0 encoder, M
    assert "stage 4 map: [1, 256, 4, 4]" in out  # stride 16 in the last stage
    assert "logits:     [1, 5, 16, 16]" in out


def test_info_loads_weights_as_a_check(tmp_path) -> None:
    from safetensors.torch import save_file

    save_file(MixTransformer.from_name("mit_b0").state_dict(), str(tmp_path / "enc.safetensors"))
    result = invoke("--backbone", "mit_b0", "--size", "64", "--weights", str(tmp_path / "enc.safetensors"))
    assert result.exit_code == 0, result.output
    assert "loaded 176 encoder tensors" in result.output


def test_bad_weights_give_one_error_line_and_exit_code_2(tmp_path) -> None:
    missing = invoke("--backbone", "mit_b0", "--size", "64", "--weights", str(tmp_path / "missing.pth"))
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    assert "weight file not found" in missing.output and "missing.pth" in missing.output

    from safetensors.torch import save_file

    save_file(MixTransformer.from_name("mit_b0").state_dict(), str(tmp_path / "b0.safetensors"))
    other = invoke("--backbone", "mit_b1", "--size", "64", "--weights", str(tmp_path / "b0.safetensors"))
    assert other.exit_code == 2 and "Traceback" not in other.output
    assert "mis-shaped" in other.output and "mit_b1" in other.output

    data = (tmp_path / "b0.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    cut = invoke("--backbone", "mit_b0", "--size", "64", "--weights", str(tmp_path / "cut.safetensors"))
    assert cut.exit_code == 2 and "cannot read weight file" in cut.output and "Traceback" not in cut.output


def test_bad_backbone_and_strides_are_user_errors() -> None:
    result = invoke("--backbone", "mit_b9")
    assert result.exit_code == 2 and "unknown backbone 'mit_b9'" in result.output
    result = invoke("--strides", "4,2,x")
    assert result.exit_code == 2 and "--strides" in result.output


def test_info_deeplabv2_resnet101_matches_the_paper_parameter_count() -> None:
    """Tab. 3: DeepLabV2-ResNet101 has 43.6 M parameters; ours (21 classes, no PFA modules) within 2 %."""
    result = invoke("--backbone", "resnet101", "--head", "deeplabv2", "--num-classes", "21", "--size", "64")
    assert result.exit_code == 0, result.output
    total = float(re.search(r"total\s*│\s*([\d.]+)", result.output).group(1))
    assert abs(total - 43.6) / 43.6 < 0.02, total
    assert "stage 4 map: [1, 2048, 8, 8]" in result.output  # output stride 8
    assert "features F: [1, 2048, 8, 8]" in result.output


def test_info_deeplabv3plus_and_bad_head_names() -> None:
    result = invoke("--backbone", "resnet50", "--head", "deeplabv3plus", "--output-stride", "16", "--size", "64")
    assert result.exit_code == 0, result.output
    assert "features F: [1, 256, 16, 16]" in result.output  # the V3+ decoder at 1/4
    bad = invoke("--backbone", "resnet50", "--head", "fcn", "--size", "64")
    assert bad.exit_code == 2 and "--head" in bad.output and "deeplabv2" in bad.output
    bad = invoke("--backbone", "resnet152", "--head", "deeplabv2", "--size", "64")
    assert bad.exit_code == 2 and "resnet101" in bad.output
