"""The built-in image classifier any method carries: loss, gradients, targets, inference, learning, and the
class source ``head`` that reads it."""

from __future__ import annotations

import pytest
import torch

from scribbleseg.errors import ConfigError
from scribbleseg.methods import (
    Evidence,
    ImageClassification,
    ImageClassifierSettings,
    PartialCEMethod,
    SegmentationMethod,
    StepResult,
    TrainBatch,
    check_source_fits,
    default_class_source,
    parse_class_source,
    partial_cross_entropy,
)
from scribbleseg.models import MixTransformer, ResNet, SegFormerHead
from scribbleseg.models.heads.deeplabv2 import DeepLabV2Head
from scribbleseg.models.heads.deeplabv3plus import DeepLabV3PlusHead
from scribbleseg.pfa import PFAMethod, PFASettings

K = 3


def tiny_mit():
    return MixTransformer(embed_dims=(8, 16, 16, 16), num_heads=(1, 1, 1, 1), depths=(1, 1, 1, 1),
                          mlp_ratios=(2, 2, 2, 2), sr_ratios=(4, 2, 1, 1))


def with_classifier(method_cls=PartialCEMethod, seed=0, **settings):
    torch.manual_seed(seed)
    encoder = tiny_mit()
    head = SegFormerHead(encoder.out_channels, num_classes=K, embed_dim=16, dropout=0.0)
    classifier = ImageClassification(ImageClassifierSettings(**settings), encoder.out_channels,
                                     head.feature_channels, K)
    if method_cls is PFAMethod:
        return PFAMethod(encoder, head, K, settings=PFASettings(warmup_iters=0, slots=1), classifier=classifier)
    return method_cls(encoder, head, K, classifier=classifier)


def toy_batch(n=4, size=32, seed=0):
    """Class 1 present iff the image is bright in channel 0, class 2 iff bright in channel 1."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=generator) * 0.3
    image_classes = torch.zeros(n, K, dtype=torch.bool)
    image_classes[:, 0] = True
    image_classes[:, 1] = torch.rand(n, generator=generator) > 0.5
    image_classes[:, 2] = torch.rand(n, generator=generator) > 0.5
    images[:, 0] += 2.0 * image_classes[:, 1, None, None]
    images[:, 1] += 2.0 * image_classes[:, 2, None, None]
    scribbles = torch.full((n, size, size), 255, dtype=torch.long)
    scribbles[:, :2] = 0
    crop_classes = image_classes.clone()
    crop_classes[:, 2] = False  # the crop lost class 2 (e.g. cut away)
    return TrainBatch(images, scribbles, crop_classes, image_classes)


def test_loss_is_pce_plus_weighted_bce_against_whole_image_labels():
    method = with_classifier(lambda_cls=0.5, targets="image")
    batch = toy_batch()
    with torch.no_grad():
        torch.nn.init.normal_(method.image_classifier.head.linear.weight)
    result = method.training_step(batch, 0)
    assert method.loss_names() == ("total", "pce", "cls") and set(result.parts) == set(method.loss_names())
    network = method.run_network(batch.images)
    logits = method.image_classifier.logits(network)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.image_classes.float())
    pce = partial_cross_entropy(network.basic, batch.scribbles)
    torch.testing.assert_close(result.parts["cls"], 0.5 * bce.detach())
    torch.testing.assert_close(result.loss.detach(), (pce + 0.5 * bce).detach())


def test_crop_targets_are_the_default_and_use_the_crop_classes():
    method = with_classifier(lambda_cls=1.0)
    assert method.image_classifier.settings.targets == "crop"
    with torch.no_grad():
        torch.nn.init.normal_(method.image_classifier.head.linear.weight)
    batch = toy_batch()
    logits = method.image_classifier.logits(method.run_network(batch.images))
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.crop_classes.float())
    other = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.image_classes.float())
    got = method.training_step(batch, 0).parts["cls"]
    torch.testing.assert_close(got, want.detach())
    assert not torch.allclose(got, other.detach())


@pytest.mark.parametrize("detach", [False, True])
def test_gradient_into_the_encoder_only_without_detach(detach):
    method = with_classifier(lambda_cls=1.0, detach=detach, features="deepest")
    with torch.no_grad():
        torch.nn.init.normal_(method.image_classifier.head.linear.weight)
    batch = toy_batch()
    network = method.run_network(batch.images)
    logits = method.image_classifier.logits(network)
    term = method.image_classifier.loss(logits, batch.image_classes)
    term.backward()
    encoder_grad = sum(float(p.grad.abs().sum()) for p in method.encoder.parameters() if p.grad is not None)
    assert method.image_classifier.head.linear.weight.grad.abs().sum() > 0
    assert (encoder_grad == 0.0) is detach


def test_pfa_adds_the_classifier_loss_in_every_phase():
    method = with_classifier(PFAMethod, lambda_cls=1.0)
    method.settings.warmup_iters = 1
    batch = toy_batch()
    batch.crop_classes = batch.image_classes  # every class in the crops: the bank fills at once
    phases = []
    for iteration in range(2):
        result = method.training_step(batch, iteration)
        parts = result.parts
        phases.append(result.phase)
        others = sum(float(parts[name]) * weight for name, weight in (("pce", 1.0), ("con_local", 0.01),
                                                                      ("con_global", 0.01)))
        assert float(parts["cls"]) > 0
        assert float(parts["total"]) == pytest.approx(others + float(parts["cls"]), rel=1e-5)
    assert phases == ["warmup", "global"] and "cls" in method.loss_names()


def test_classifier_learns_a_separable_toy_task_and_feeds_the_head_source():
    method = with_classifier(lambda_cls=1.0, features="deepest", pooling="avg", targets="image")  # toy crops drop class 2
    optimiser = torch.optim.Adam(method.parameters(), lr=1e-2)
    for step in range(40):
        result = method.training_step(toy_batch(n=8, seed=step), step)
        optimiser.zero_grad()
        result.loss.backward()
        optimiser.step()
    method.eval()
    test = toy_batch(n=16, seed=1000)
    prediction = method.infer(test.images)
    assert prediction.image_logits.shape == (16, K)
    chosen = parse_class_source("head").classes(Evidence(prediction.logits["basic"], prediction.image_logits),
                                                (32, 32))
    truth = test.image_classes
    assert chosen[:, 0].all()  # background always present
    assert (chosen[:, 1:] == truth[:, 1:]).float().mean() >= 0.9


def test_head_source_thresholds_probabilities_and_refuses_models_without_a_classifier():
    logits = torch.tensor([[-5.0, 0.3, -0.3], [-5.0, 2.0, 1.0]])
    evidence = Evidence(torch.zeros(2, K, 4, 4), logits)
    got = parse_class_source("head").classes(evidence, (4, 4))
    assert got.tolist() == [[True, True, False], [True, True, True]]
    assert parse_class_source("head:0.8").classes(evidence, (4, 4)).tolist() == [[True, False, False],
                                                                                 [True, True, False]]
    with pytest.raises(ConfigError, match="image classifier"):
        parse_class_source("head").classes(Evidence(evidence.basic, None), (4, 4))
    for bad in ("head:1.5", "head:0", "head:x"):
        with pytest.raises(ConfigError, match="TAU"):
            parse_class_source(bad)
    plain = PartialCEMethod(tiny_mit(), SegFormerHead(tiny_mit().out_channels, K, embed_dim=16), K)
    assert not plain.has_image_classifier and plain.infer(torch.zeros(1, 3, 32, 32)).image_logits is None
    assert default_class_source(plain) == "threshold" and default_class_source(with_classifier()) == "head"
    with pytest.raises(ConfigError, match="trained without a 'classifier'"):
        check_source_fits(parse_class_source("head"), plain)
    check_source_fits(parse_class_source("threshold"), plain)


@pytest.mark.parametrize("decoder", ["deeplabv2", "deeplabv3plus"])
@pytest.mark.parametrize("features", ["fused", "deepest", "logits"])
def test_classifier_fits_resnet_and_deeplab_decoders(decoder, features):
    torch.manual_seed(0)
    encoder = ResNet(depths=(1, 1, 1, 1), base_width=4, stem_channels=8, output_stride=16)
    if decoder == "deeplabv2":
        head = DeepLabV2Head(encoder.out_channels, K, in_strides=encoder.output_strides, dilations=(1, 2))
    else:
        head = DeepLabV3PlusHead(encoder.out_channels, K, in_strides=encoder.output_strides, aspp_channels=8,
                                 low_level_channels=4, decoder_channels=8, aspp_dilations=(1, 2), dropout=0.0)
    classifier = ImageClassification(ImageClassifierSettings(features=features), encoder.out_channels,
                                     head.feature_channels, K)
    method = PFAMethod(encoder, head, K, settings=PFASettings(warmup_iters=0, slots=1), classifier=classifier)
    result = method.training_step(toy_batch(n=2), 0)
    result.loss.backward()
    assert torch.isfinite(result.loss) and classifier.head.linear.weight.grad.abs().sum() > 0
    assert method.eval().infer(torch.zeros(1, 3, 32, 32)).image_logits.shape == (1, K)


class _BareMethod(SegmentationMethod):
    """A method that knows nothing about the image classifier: its own loss is the basic map's mean."""

    method_name = "bare"

    def own_loss_names(self):
        return ("total",)

    def own_step(self, network, batch, iteration):
        return StepResult(loss=network.basic.mean(), parts={})


def test_the_base_adds_the_classifier_loss_to_a_method_that_never_names_it():
    torch.manual_seed(0)
    encoder = tiny_mit()
    head = SegFormerHead(encoder.out_channels, num_classes=K, embed_dim=16, dropout=0.0)
    classifier = ImageClassification(ImageClassifierSettings(lambda_cls=1.0), encoder.out_channels,
                                     head.feature_channels, K)
    method = _BareMethod(encoder, head, K, classifier=classifier)
    batch = toy_batch()
    result = method.training_step(batch, 0)
    assert method.loss_names() == ("total", "cls") and set(result.parts) == {"total", "cls"}
    network = method.run_network(batch.images)
    want = network.basic.mean() + classifier.training_loss(network, batch)
    torch.testing.assert_close(result.loss.detach(), want.detach())
    torch.testing.assert_close(result.parts["total"], want.detach())
    bare = _BareMethod(encoder, head, K).training_step(batch, 0)
    assert set(bare.parts) == {"total"}


@pytest.mark.parametrize("composed", ["training_step", "loss_names"])
def test_a_method_cannot_override_the_composed_training_calls(composed):
    with pytest.raises(TypeError, match=f"overrides {composed}"):
        type("Forgetful", (_BareMethod,), {composed: lambda self, *args: None})
