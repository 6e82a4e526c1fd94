"""Encoder weight loading: parity with transformers' SegformerModel for every accepted file layout,
and one clear WeightsError for missing, truncated, partial and other-variant files.

Reference models are built from a ``SegformerConfig`` with random weights (nothing is downloaded);
every parameter is perturbed so that LayerNorm weights and biases are not the trivial ones/zeros.
Hugging Face's MiT uses LayerNorm eps 1e-5 everywhere, so ours is built with ``layer_norm_eps=1e-5``.
"""

from __future__ import annotations

import re

import pytest
import torch

from scribbleseg.errors import WeightsError
from scribbleseg.models import MixTransformer, load_encoder_weights, read_state_dict
from segformer_reference import random_segformer

transformers = pytest.importorskip("transformers")

TOLERANCE = 1e-5


def hf_model(variant: str, seed: int = 0):
    """Random ``SegformerModel`` with the architecture of ``variant`` (eval mode)."""
    widths = {"mit_b0": [32, 64, 160, 256], "mit_b1": [64, 128, 320, 512]}[variant]
    return random_segformer(seed, hidden_sizes=widths, num_attention_heads=[1, 2, 5, 8], depths=[2, 2, 2, 2],
                            sr_ratios=[8, 4, 2, 1])


def saved_reference(folder, variant: str, seed: int, size: tuple[int, int]):
    """Save a random HF model to ``folder``; return ``(reference, folder)`` where ``reference`` holds
    a fixed input ``x [2, 3, H, W]`` and the model's four stage outputs for it."""
    model = hf_model(variant, seed)
    model.save_pretrained(folder)
    torch.manual_seed(5)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        maps = [m.clone() for m in model(pixel_values=x, output_hidden_states=True).hidden_states]
    return (x, maps), folder


@pytest.fixture(scope="module")
def hf_b0(tmp_path_factory):
    return saved_reference(tmp_path_factory.mktemp("hf_b0"), "mit_b0", 0, (64, 96))


@pytest.fixture(scope="module")
def hf_b1(tmp_path_factory):
    return saved_reference(tmp_path_factory.mktemp("hf_b1"), "mit_b1", 1, (64, 64))


def ours(variant: str) -> MixTransformer:
    return MixTransformer.from_name(variant, layer_norm_eps=1e-5).eval()


def assert_same_stage_maps(reference, model: MixTransformer) -> None:
    """Our four stage maps equal the reference SegformerModel's hidden states to ``TOLERANCE``."""
    x, expected = reference
    with torch.no_grad():
        got = model(x)
    assert len(expected) == len(got) == 4
    for i, (e, g) in enumerate(zip(expected, got)):
        assert e.shape == g.shape, f"stage {i + 1}"
        assert (e - g).abs().max().item() <= TOLERANCE, f"stage {i + 1}"


def hf_to_nvlabs(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rewrite a Hugging Face MiT state dict in the NVlabs ``mit_b*.pth`` layout (+ an ImageNet head)."""
    renames = [
        (r"^encoder\.patch_embeddings\.(\d)\.proj\.", lambda m: f"patch_embed{int(m[1]) + 1}.proj."),
        (r"^encoder\.patch_embeddings\.(\d)\.layer_norm\.", lambda m: f"patch_embed{int(m[1]) + 1}.norm."),
        (r"^encoder\.layer_norm\.(\d)\.", lambda m: f"norm{int(m[1]) + 1}."),
        (r"^encoder\.block\.(\d)\.(\d+)\.", lambda m: f"block{int(m[1]) + 1}.{m[2]}."),
    ]
    parts = [(".layer_norm_1.", ".norm1."), (".layer_norm_2.", ".norm2."), (".attention.self.query.", ".attn.q."),
             (".attention.self.sr.", ".attn.sr."), (".attention.self.layer_norm.", ".attn.norm."),
             (".attention.output.dense.", ".attn.proj."), (".mlp.dense1.", ".mlp.fc1."),
             (".mlp.dense2.", ".mlp.fc2.")]
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if ".attention.self.value." in key:
            continue
        if ".attention.self.key." in key:
            tensor = torch.cat([tensor, state[key.replace(".key.", ".value.")]], dim=0)
            key = key.replace(".attention.self.key.", ".attn.kv.")
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        for old, new in parts:
            key = key.replace(old, new)
        out[key] = tensor.clone()
    out["head.weight"] = torch.randn(1000, 256 if "norm4.weight" in out and out["norm4.weight"].numel() == 256 else 512)
    out["head.bias"] = torch.zeros(1000)
    return out


def test_hf_folder_and_its_safetensors_match_transformers_b0(hf_b0) -> None:
    reference, folder = hf_b0
    for source in (folder, folder / "model.safetensors"):
        model = ours("mit_b0")
        report = load_encoder_weights(model, source)
        assert report.source_format == "huggingface" and report.loaded == len(model.state_dict())
        assert report.path.name == "model.safetensors"
        assert_same_stage_maps(reference, model)


def test_hf_b1_matches_transformers_with_the_authors_strides_too(hf_b1) -> None:
    reference, folder = hf_b1
    model = ours("mit_b1")
    load_encoder_weights(model, folder / "model.safetensors")
    assert_same_stage_maps(reference, model)
    strided = MixTransformer.from_name("mit_b1", strides=(4, 2, 2, 1), layer_norm_eps=1e-5).eval()
    load_encoder_weights(strided, folder)  # strides do not change any weight shape
    assert strided(torch.randn(1, 3, 64, 64))[-1].shape == (1, 512, 4, 4)


def test_pytorch_model_bin_and_for_segmentation_checkpoint(hf_b0, tmp_path) -> None:
    reference, folder = hf_b0
    state, _ = read_state_dict(folder)
    wrapped = {f"segformer.{k}": v for k, v in state.items()}
    wrapped["decode_head.classifier.weight"] = torch.zeros(21, 256, 1, 1)
    torch.save(wrapped, tmp_path / "pytorch_model.bin")
    model = ours("mit_b0")
    report = load_encoder_weights(model, tmp_path)  # folder with only pytorch_model.bin
    assert report.ignored == ("decode_head.classifier.weight",)
    assert_same_stage_maps(reference, model)


def test_folder_prefers_safetensors_over_pytorch_model_bin(hf_b0, tmp_path) -> None:
    _, folder = hf_b0
    state, _ = read_state_dict(folder)
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, tmp_path / "pytorch_model.bin")
    model = ours("mit_b0")
    assert load_encoder_weights(model, tmp_path).path.name == "model.safetensors"
    assert model.stages[0].norm.weight.abs().sum() > 0


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "segmentation_checkpoint"])
def test_nvlabs_pth_matches_transformers(hf_b0, tmp_path, wrap) -> None:
    reference, folder = hf_b0
    nvlabs = hf_to_nvlabs(read_state_dict(folder)[0])
    assert "block1.0.attn.kv.weight" in nvlabs and "patch_embed1.norm.weight" in nvlabs
    expected_ignored = {"head.weight", "head.bias"}
    if wrap == "plain":
        content = nvlabs
    elif wrap == "state_dict":
        content = {"state_dict": nvlabs}
    else:  # a trained NVlabs SegFormer: backbone under "backbone.", plus decode head and metadata
        content = {"meta": {"epoch": 3, "note": "ade"},
                   "state_dict": {**{f"backbone.{k}": v for k, v in nvlabs.items() if not k.startswith("head.")},
                                  "decode_head.conv_seg.weight": torch.zeros(150, 256, 1, 1)}}
        expected_ignored = {"decode_head.conv_seg.weight"}
    torch.save(content, tmp_path / "mit_b0.pth")
    model = ours("mit_b0")
    report = load_encoder_weights(model, tmp_path / "mit_b0.pth")
    assert report.source_format == "nvlabs"
    assert set(report.ignored) == expected_ignored
    assert_same_stage_maps(reference, model)


def test_our_own_safetensors_under_an_encoder_prefix(hf_b0, tmp_path) -> None:
    from safetensors.torch import save_file

    reference, folder = hf_b0
    source = ours("mit_b0")
    load_encoder_weights(source, folder)
    full = {f"encoder.{k}": v for k, v in source.state_dict().items()}
    full["head.classifier.weight"] = torch.zeros(3, 256, 1, 1)
    save_file(full, str(tmp_path / "last.safetensors"))
    model = ours("mit_b0")
    report = load_encoder_weights(model, tmp_path / "last.safetensors")
    assert report.source_format == "scribbleseg" and report.ignored == ("head.classifier.weight",)
    assert_same_stage_maps(reference, model)


def test_missing_path_names_the_path(tmp_path) -> None:
    with pytest.raises(WeightsError, match=re.escape(str(tmp_path / "nope.pth"))):
        load_encoder_weights(ours("mit_b0"), tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="holds none of model.safetensors"):
        load_encoder_weights(ours("mit_b0"), tmp_path)


@pytest.mark.parametrize("kind", ["safetensors", "pth"])
def test_truncated_file_is_one_weights_error(hf_b0, tmp_path, kind) -> None:
    _, folder = hf_b0
    if kind == "safetensors":
        data = (folder / "model.safetensors").read_bytes()
    else:
        torch.save(read_state_dict(folder)[0], tmp_path / "full.pth")
        data = (tmp_path / "full.pth").read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 2])
    model = ours("mit_b0")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError, match=rf"cannot read weight file .*cut\.{kind}.*truncated"):
        load_encoder_weights(model, cut)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_text_file_is_a_weights_error(tmp_path) -> None:
    (tmp_path / "notes.pth").write_text("not weights")
    with pytest.raises(WeightsError, match="notes.pth"):
        load_encoder_weights(ours("mit_b0"), tmp_path / "notes.pth")


def test_b0_file_into_b1_lists_mis_shaped_keys_and_loads_nothing(hf_b0) -> None:
    _, folder = hf_b0
    model = ours("mit_b1")
    before = model.stages[0].patch_embed.proj.weight.clone()
    with pytest.raises(WeightsError) as info:
        load_encoder_weights(model, folder)
    message = str(info.value)
    assert "mit_b1" in message and "another MiT variant" in message
    assert re.search(r"\d+ mis-shaped: encoder\.patch_embeddings\.0\.proj\.weight \(file \[32, 3, 7, 7\] "
                     r"vs model \[64, 3, 7, 7\]\)", message)
    assert "more)" in message  # the long list is abbreviated
    assert message.count("\n") == 0
    assert torch.equal(model.stages[0].patch_embed.proj.weight, before)


def test_partial_and_foreign_files_list_missing_and_unexpected_keys(hf_b0, tmp_path) -> None:
    from safetensors.torch import save_file

    _, folder = hf_b0
    state = read_state_dict(folder)[0]
    partial = {k: v for k, v in state.items() if not k.startswith("encoder.block.3.")}
    partial["encoder.block.0.0.attention.self.key.weight"] = state["encoder.block.0.0.attention.self.key.weight"]
    del partial["encoder.block.0.0.attention.self.value.weight"]
    partial["encoder.block.0.9.mlp.dense1.weight"] = torch.zeros(1)
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(WeightsError) as info:
        load_encoder_weights(ours("mit_b0"), tmp_path / "partial.safetensors")
    message = str(info.value)
    assert "missing: stages.0.blocks.0.attn.kv.weight" in message
    assert "stages.3.blocks.0.attn.q.weight" in message
    assert "unexpected: encoder.block.0.0.attention.self.key.weight" in message
    assert "encoder.block.0.9.mlp.dense1.weight" in message

    save_file({"classifier.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match="holds no MiT encoder weights.*classifier.weight"):
        load_encoder_weights(ours("mit_b0"), tmp_path / "other.safetensors")


def test_pickles_are_read_with_weights_only(tmp_path) -> None:
    class Payload:
        def __reduce__(self):
            return (print, ("unsafe code ran",))

    torch.save({"state_dict": {"x": Payload()}}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="evil.pth"):
        read_state_dict(tmp_path / "evil.pth")


def test_sharded_hf_folder_is_read_through_its_index(hf_b0, tmp_path) -> None:
    import json

    from safetensors.torch import save_file

    reference, folder = hf_b0
    state = read_state_dict(folder)[0]
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, shard_keys in shards.items():
        save_file({k: state[k] for k in shard_keys}, str(tmp_path / name))
    index = {"metadata": {}, "weight_map": {k: n for n, ks in shards.items() for k in ks}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    model = ours("mit_b0")
    assert load_encoder_weights(model, tmp_path).loaded == len(model.state_dict())
    assert_same_stage_maps(reference, model)
