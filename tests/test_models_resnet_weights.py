"""ResNet encoder weight loading: parity with transformers' ResNetModel through its Hugging Face files
and through the torchvision key layout, and one clear WeightsError for files that do not fit.

Reference models are built from a ``ResNetConfig`` with random weights (nothing is downloaded); every
parameter and BatchNorm statistic is perturbed so eval-mode BatchNorm is not an identity.
"""

from __future__ import annotations

import re

import pytest
import torch

from scribbleseg.errors import WeightsError
from scribbleseg.models import MixTransformer, ResNet, load_encoder_weights, read_state_dict

transformers = pytest.importorskip("transformers")

TOLERANCE = 1e-5
DEPTHS = (1, 2, 1, 1)
PLAIN_STRIDES = (4, 8, 16, 32)  # transformers' ResNet has no dilation


def hf_resnet(depths=DEPTHS, embedding_size: int = 8, hidden_sizes=(32, 64, 128, 256), seed: int = 0):
    """Random ``ResNetModel`` (v1.5 bottlenecks, eval mode) with perturbed weights and BN statistics."""
    config = transformers.ResNetConfig(embedding_size=embedding_size, hidden_sizes=list(hidden_sizes),
                                       depths=list(depths), layer_type="bottleneck")
    torch.manual_seed(seed)
    model = transformers.ResNetModel(config).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.05)
    return model


def reference_maps(model, x: torch.Tensor) -> list[torch.Tensor]:
    """The 4 stage outputs of a ResNetModel (hidden_states[0] is the stem output)."""
    with torch.no_grad():
        return [h.clone() for h in model(pixel_values=x, output_hidden_states=True).hidden_states[1:]]


@pytest.fixture(scope="module")
def hf_tiny(tmp_path_factory):
    """``(x, reference maps, folder)`` of a tiny ResNetModel saved with ``save_pretrained``."""
    folder = tmp_path_factory.mktemp("hf_resnet")
    model = hf_resnet()
    model.save_pretrained(folder)
    x = torch.randn(1, 3, 64, 48, generator=torch.Generator().manual_seed(5))
    return x, reference_maps(model, x), folder


def ours(output_stride: int = 32, depths=DEPTHS, base_width: int = 8) -> ResNet:
    return ResNet(depths=depths, base_width=base_width, output_stride=output_stride).eval()


def assert_same_stage_maps(x, expected, model: ResNet) -> None:
    with torch.no_grad():
        got = model(x)
    assert len(got) == len(expected) == 4
    for i, (e, g) in enumerate(zip(expected, got)):
        step = PLAIN_STRIDES[i] // model.output_strides[i]
        g = g[..., ::step, ::step]  # a dilated encoder computes the plain maps on this sub-grid
        assert e.shape == g.shape, f"stage {i + 1}"
        assert (e - g).abs().max().item() <= TOLERANCE, f"stage {i + 1}"


def hf_to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rewrite a Hugging Face ResNet state dict in torchvision's ``resnet*.pth`` layout (+ an ImageNet fc)."""
    renames = [
        (r"^embedder\.embedder\.convolution\.", lambda m: "conv1."),
        (r"^embedder\.embedder\.normalization\.", lambda m: "bn1."),
        (r"^encoder\.stages\.(\d)\.layers\.(\d+)\.shortcut\.convolution\.",
         lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.0."),
        (r"^encoder\.stages\.(\d)\.layers\.(\d+)\.shortcut\.normalization\.",
         lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.1."),
        (r"^encoder\.stages\.(\d)\.layers\.(\d+)\.layer\.(\d)\.convolution\.",
         lambda m: f"layer{int(m[1]) + 1}.{m[2]}.conv{int(m[3]) + 1}."),
        (r"^encoder\.stages\.(\d)\.layers\.(\d+)\.layer\.(\d)\.normalization\.",
         lambda m: f"layer{int(m[1]) + 1}.{m[2]}.bn{int(m[3]) + 1}."),
    ]
    out = {}
    for key, tensor in state.items():
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        out[key] = tensor.clone()
    width = out["layer4.0.conv3.weight"].shape[0]
    out["fc.weight"], out["fc.bias"] = torch.randn(1000, width), torch.zeros(1000)
    return out


@pytest.mark.parametrize(("source", "output_stride"), [("folder", 32), ("model.safetensors", 32),
                                                       ("model.safetensors", 8)])
def test_hf_folder_and_its_safetensors_match_transformers(hf_tiny, source, output_stride) -> None:
    x, expected, folder = hf_tiny
    model = ours(output_stride)
    report = load_encoder_weights(model, folder if source == "folder" else folder / source)
    assert report.source_format == "huggingface" and report.path.name == "model.safetensors"
    assert report.loaded == len(model.state_dict()) and report.ignored == ()
    assert_same_stage_maps(x, expected, model)


def test_image_classification_checkpoint_as_pytorch_model_bin(hf_tiny, tmp_path) -> None:
    x, expected, folder = hf_tiny
    state, _ = read_state_dict(folder)
    wrapped = {f"resnet.{k}": v for k, v in state.items()}
    wrapped["classifier.1.weight"], wrapped["classifier.1.bias"] = torch.zeros(1000, 256), torch.zeros(1000)
    torch.save(wrapped, tmp_path / "pytorch_model.bin")
    model = ours()
    report = load_encoder_weights(model, tmp_path)  # folder with only pytorch_model.bin
    assert report.source_format == "huggingface"
    assert set(report.ignored) == {"classifier.1.weight", "classifier.1.bias"}
    assert_same_stage_maps(x, expected, model)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "old_file_without_bn_counters"])
def test_torchvision_pth_matches_transformers(hf_tiny, tmp_path, wrap) -> None:
    x, expected, folder = hf_tiny
    torchvision = hf_to_torchvision(read_state_dict(folder)[0])
    assert {"conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer2.1.bn3.bias",
            "layer4.0.downsample.1.weight"} <= set(torchvision)
    if wrap == "old_file_without_bn_counters":
        torchvision = {k: v for k, v in torchvision.items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": torchvision} if wrap == "state_dict" else torchvision, tmp_path / "resnet-tiny.pth")
    model = ours(8)
    report = load_encoder_weights(model, tmp_path / "resnet-tiny.pth")
    assert report.source_format == "torchvision" and set(report.ignored) == {"fc.weight", "fc.bias"}
    assert_same_stage_maps(x, expected, model)


def test_our_own_safetensors_under_an_encoder_prefix(hf_tiny, tmp_path) -> None:
    from safetensors.torch import save_file

    x, expected, folder = hf_tiny
    source = ours()
    load_encoder_weights(source, folder)
    full = {f"encoder.{k}": v for k, v in source.state_dict().items()}
    full["head.classifiers.0.weight"] = torch.zeros(21, 256, 3, 3)
    save_file(full, str(tmp_path / "last.safetensors"))
    model = ours(16)
    report = load_encoder_weights(model, tmp_path / "last.safetensors")
    assert report.source_format == "scribbleseg" and report.ignored == ("head.classifiers.0.weight",)
    assert_same_stage_maps(x, expected, model)


def test_resnet50_shaped_hf_model_matches_and_does_not_fit_resnet101(tmp_path) -> None:
    """The real ResNet-50 architecture (transformers' default ResNetConfig), random weights."""
    reference = transformers.ResNetModel(transformers.ResNetConfig()).eval()
    reference.save_pretrained(tmp_path)
    x = torch.randn(1, 3, 32, 32)
    model = ResNet.from_name("resnet50").eval()
    assert load_encoder_weights(model, tmp_path).loaded == len(model.state_dict())
    assert_same_stage_maps(x, reference_maps(reference, x), model)
    with torch.device("meta"):
        deeper = ResNet.from_name("resnet101")
    with pytest.raises(WeightsError, match=r"model\.safetensors \(huggingface layout\) do not fit encoder resnet101 "
                                           r"\(a partial file or a shallower ResNet variant\?\); "
                                           r"\d+ missing: stages\.2\.6\.conv1\.weight"):
        load_encoder_weights(deeper, tmp_path)


def test_other_variants_are_one_error_listing_keys_and_load_nothing(hf_tiny) -> None:
    _, _, folder = hf_tiny
    deeper = ours(depths=(1, 2, 2, 1))
    before = {k: v.clone() for k, v in deeper.state_dict().items()}
    with pytest.raises(WeightsError) as info:
        load_encoder_weights(deeper, folder)
    message = str(info.value)
    assert "shallower ResNet variant" in message and "missing: stages.2.1.conv1.weight" in message
    assert all(torch.equal(before[k], v) for k, v in deeper.state_dict().items())

    with pytest.raises(WeightsError, match=r"another ResNet variant.*unexpected: encoder\.stages\.1\.layers\.1\."):
        load_encoder_weights(ours(depths=(1, 1, 1, 1)), folder)

    wider = ours(base_width=16)
    with pytest.raises(WeightsError) as info:
        load_encoder_weights(wider, folder)
    message = str(info.value)
    assert re.search(r"\d+ mis-shaped: embedder\.embedder\.convolution\.weight \(file \[8, 3, 7, 7\] vs model "
                     r"\[16, 3, 7, 7\]\)", message)
    assert "ResNet(out_channels=(64, 128, 256, 512), depths=(1, 2, 1, 1))" in message
    assert "more)" in message and message.count("\n") == 0


def test_message_names_the_file_its_layout_and_the_named_variant(hf_tiny, tmp_path) -> None:
    _, _, folder = hf_tiny
    torchvision = hf_to_torchvision(read_state_dict(folder)[0])
    torch.save(torchvision, tmp_path / "resnet50-0676ba61.pth")
    with torch.device("meta"):
        model = ResNet.from_name("resnet101")
    with pytest.raises(WeightsError, match=r"resnet50-0676ba61\.pth \(torchvision layout\) do not fit encoder "
                                           r"resnet101 .*mis-shaped: conv1\.weight"):
        load_encoder_weights(model, tmp_path / "resnet50-0676ba61.pth")


def test_files_of_the_other_encoder_family_are_named_as_such(hf_tiny, tmp_path) -> None:
    from safetensors.torch import save_file

    _, _, folder = hf_tiny
    mit = MixTransformer(embed_dims=(8, 8, 8, 8), num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1))
    save_file(mit.state_dict(), str(tmp_path / "mit.safetensors"))
    with pytest.raises(WeightsError, match=r"holds no ResNet encoder weights \(it holds MiT weights in scribbleseg "
                                           r"layout\): no key ends in one of stem\.conv\.weight"):
        load_encoder_weights(ours(), tmp_path / "mit.safetensors")
    with pytest.raises(WeightsError, match=r"holds no MiT encoder weights \(it holds ResNet weights in "
                                           r"huggingface layout\)"):
        load_encoder_weights(mit, folder)
    with pytest.raises(TypeError, match="cannot load encoder weights into a Linear"):
        load_encoder_weights(torch.nn.Linear(2, 2), folder)


def test_partial_torchvision_file_lists_the_missing_stage(hf_tiny, tmp_path) -> None:
    _, _, folder = hf_tiny
    partial = {k: v for k, v in hf_to_torchvision(read_state_dict(folder)[0]).items() if not k.startswith("layer4.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match=r"partial\.pth \(torchvision layout\).*missing: stages\.3\.0\.conv1\.weight"):
        load_encoder_weights(ours(), tmp_path / "partial.pth")
