"""The experiment config schema: one pydantic model per YAML section, every section strict.

Sections: ``name``, ``method`` (a name of :data:`~scribbleseg.engine.config.method_table.METHODS`), ``data``,
``model`` (``backbone`` and ``decoder`` discriminated by ``type``, from
:mod:`scribbleseg.models.network_settings`), one section per declared method with settings (``pfa``: the
method's own :class:`~scribbleseg.pfa.PFASettings`), ``gated_crf`` (:class:`~scribbleseg.methods.GatedCRFSettings`,
a regulariser any method adds; ``null`` = off), ``classifier``
(:class:`~scribbleseg.methods.ImageClassifierSettings`, the built-in multi-label image classifier any method
can train jointly; ``null`` = off, the default, so configs and checkpoints without it keep their meaning),
``optim``, ``train``, ``eval``. Reading YAML files, ``_base_``
inheritance, ``--set`` overrides and error messages live in :mod:`scribbleseg.engine.config.loading`.
"""

from __future__ import annotations

import json
import re
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from scribbleseg.engine.config.method_table import DEFAULT_METHOD, METHODS
from scribbleseg.errors import ConfigError
from scribbleseg.methods import BASIC_HEAD, GatedCRFSettings, ImageClassifierSettings
from scribbleseg.methods.class_sources import class_source_kind
from scribbleseg.models.network_settings import BackboneSettings, DecoderSettings, DEFAULT_BACKBONE, DEFAULT_DECODER

RUN_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
MethodName = Literal[tuple(METHODS)]  # type: ignore[valid-type]  # 'pce' | 'pfa', in the table's order


class StrictModel(BaseModel):
    """Base of every engine section: unknown keys are rejected, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticDataConfig(StrictModel):
    """The built-in synthetic set this config is meant for (``scribbleseg data synth`` makes it).

    Nothing is generated unless ``generate`` is true: a ``data.root`` that does not exist is an error (a
    typo must not silently train on made-up data), whose message gives the ``data synth`` command.
    """

    seed: int = 0
    num_train: int = Field(48, ge=1)
    num_val: int = Field(16, ge=1)
    size: int = Field(64, ge=32)
    generate: bool = Field(False, description="train generates the set into data.root when it holds none yet")


class DataConfig(StrictModel):
    """Where the images and scribbles are and how training crops are made."""

    layout: Literal["folder", "voc"] = "folder"
    root: str = "data/synthetic"
    train_split: str = "train"
    val_split: str = "val"
    crop_size: int = Field(512, ge=8)
    scale_range: tuple[float, float] = (0.5, 2.0)
    rotation_degrees: float = Field(10.0, ge=0.0)
    hflip: bool = True
    blur: bool = True
    batch_size: int = Field(16, ge=1)
    num_workers: int = Field(4, ge=0)
    synthetic: SyntheticDataConfig | None = None

    @model_validator(mode="after")
    def _check_scale_range(self) -> "DataConfig":
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {self.scale_range}")
        return self


class ModelConfig(StrictModel):
    """The network: backbone and decoder settings (by ``type``), pretrained encoder weights."""

    backbone: BackboneSettings = Field(default_factory=DEFAULT_BACKBONE)
    decoder: DecoderSettings = Field(default_factory=DEFAULT_DECODER)
    pretrained: str | None = Field(None, description="encoder weights: a file, a folder or a Hugging Face "
                                                      "Hub id (e.g. nvidia/mit-b1)")
    freeze_encoder_norms: bool = Field(False, description="no gradient into the encoder's normalisation "
                                                          "layers (the PFA authors' released code)")


class OptimConfig(StrictModel):
    """AdamW with parameter groups, linear warm-up then polynomial decay (stepped per iteration)."""

    lr: float = Field(3e-5, gt=0.0)
    head_lr_mult: float = Field(10.0, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    decay_1d_params: bool = Field(False, description="weight decay also on 1-D parameters (biases, norm weights), "
                                                     "as the released PFA code; false = matrices and kernels only")
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_iters: int = Field(0, ge=0)
    warmup_start_factor: float = Field(1e-6, gt=0.0, le=1.0)
    poly_power: float = Field(1.0, ge=0.0)
    min_lr_factor: float = Field(0.0, ge=0.0, le=1.0)
    grad_clip: float | None = Field(None, gt=0.0)
    lr_decay_per_epoch: bool = Field(False, description="hold the decay's lr for a whole epoch, a staircase (the "
                                                        "released PFA code steps its LambdaLR once per epoch); "
                                                        "false = the continuous line, per iteration")
    amp: Literal["none", "bf16", "fp16"] = "none"
    fused: bool = Field(False, description="AdamW's fused single-kernel step (CUDA and CPU); false = PyTorch's "
                                           "default implementation")


class TrainConfig(StrictModel):
    """Length of training, intervals, seed and device. Give ``max_iters`` or ``epochs``, not both.

    The ``*_epochs`` keys are resolved to iterations once the training set's size is known
    (:mod:`scribbleseg.engine.training.run_length`), so a preset scales with the data set.
    """

    max_iters: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1, description="the run's length in passes over the training set "
                                                       "(iterations = epochs x full batches per epoch)")
    val_interval: int = Field(1000, ge=0)
    val_epochs: float | None = Field(None, gt=0.0, description="validate every this many epochs (replaces "
                                                               "val_interval; scales with the data set)")
    val_if_present: bool = Field(False, description="validate only when data.val_split has images with dense "
                                                    "masks; else train without validation (a note says so)")
    log_interval: int = Field(20, ge=1)
    checkpoint_interval: int = Field(1000, ge=0)
    checkpoint_epochs: float | None = Field(None, gt=0.0, description="save 'last' every this many epochs "
                                                                      "(replaces checkpoint_interval)")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    best_metric: str = f"val/{BASIC_HEAD}/miou"
    max_nonfinite_in_a_row: int = Field(10, ge=1)
    progress: bool = True
    deterministic: bool = False
    pce_align_corners: bool = Field(False, description="upsample the logits for the partial cross-entropy with "
                                                       "align_corners=True (the released PFA code) instead of False")
    compile: bool = Field(False, description="torch.compile the encoder, the decoder's fuse and the method's "
                                             "declared parts (eager fallback when the backend is unavailable)")
    compile_backend: str = Field("inductor", min_length=1, description="torch.compile backend")
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | None = \
        Field(None, description="torch.compile mode (null = the backend's default)")

    @model_validator(mode="after")
    def _check_length(self) -> "TrainConfig":
        if (self.max_iters is None) == (self.epochs is None):
            raise ValueError("give exactly one of train.max_iters and train.epochs")
        return self

    def validates(self) -> bool:
        """Whether training scores the validation split (``val_interval`` or ``val_epochs``)."""
        return self.val_interval > 0 or self.val_epochs is not None


class EvalConfig(StrictModel):
    """Which prediction heads to score and where the image-level classes come from at inference.

    ``heads``: names of the method's heads (``null`` = every head the model has). ``class_source``:
    ``oracle`` (ground-truth labels), ``head[:TAU]`` (the model's image classifier, needs the
    ``classifier`` section), ``threshold[:N]`` (classes with at least N predicted pixels, appendix A.2),
    ``file:PATH`` (per-image JSON) or ``none``. ``extra_class_sources``: further sources the class-dependent
    heads are also scored with during training validation (logged as ``val/<head>@<source>/miou``), e.g.
    ``[oracle]`` as the upper bound beside the honest ``head``. ``require_dense_gt``: an evaluation image
    without a dense mask is an error unless this is false (then it is scored against its scribble).
    """

    heads: tuple[str, ...] | None = None
    class_source: str = "oracle"
    extra_class_sources: tuple[str, ...] = ()
    ms_flip: bool = False
    batch_size: int = Field(1, ge=1)
    require_dense_gt: bool = Field(True, description="false: score images without dense masks against their "
                                                     "scribbles (scribble-pixel accuracy, not mIoU)")

    @field_validator("class_source")
    @classmethod
    def _check_source(cls, spec: str) -> str:
        _source_kind(spec)
        return spec

    @field_validator("extra_class_sources")
    @classmethod
    def _check_extra_sources(cls, specs: tuple[str, ...]) -> tuple[str, ...]:
        for spec in specs:
            _source_kind(spec)
        return specs

    def uses_image_classifier(self) -> bool:
        """Whether a validation class source is ``head``."""
        return any(_source_kind(spec) == "head" for spec in (self.class_source, *self.extra_class_sources))


def _source_kind(spec: str) -> str:
    """The kind of a class-source spelling (the one parser, no file read); ValueError for pydantic."""
    try:
        return class_source_kind(spec)
    except ConfigError as err:
        raise ValueError(str(err)) from None


class _RunAndNetwork(StrictModel):
    """The first sections of :class:`ExperimentConfig`: the run's name, the method and its data and network."""

    name: str = Field("experiment", description="run name (a plain folder name: runs/<name>)")
    method: MethodName = DEFAULT_METHOD
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()


# one section per declared method with settings (``pfa``), after ``model`` as the YAML and checkpoints have them
_MethodSections = create_model(  # type: ignore[call-overload]
    "_MethodSections", __base__=_RunAndNetwork,
    **{family.section: (family.settings, Field(default_factory=family.settings, description=f"used by method {name}"))
       for name, family in METHODS.items() if family.settings is not None})


class ExperimentConfig(_MethodSections):  # type: ignore[misc, valid-type]
    """One experiment: every knob of data, model, method, optimiser, training and evaluation."""

    gated_crf: GatedCRFSettings | None = Field(None, description="the Gated CRF regulariser (any method); "
                                                                 "null = off")
    classifier: ImageClassifierSettings | None = Field(
        None, description="the built-in multi-label image classifier (any method), trained jointly and read "
                          "by the class source 'head'; null = off")
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig(max_iters=1000)
    eval: EvalConfig = EvalConfig()

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not re.fullmatch(RUN_NAME_PATTERN, name):
            raise ValueError("the run name must be a plain folder name (letters, digits, '.', '_' and '-', "
                             "starting with a letter or digit, so no '/' and no '..'): the run goes to runs/<name>; "
                             "use --work-dir to put a run somewhere else")
        return name

    @model_validator(mode="after")
    def _check_classifier_for_head_source(self) -> "ExperimentConfig":
        if self.classifier is None and self.eval.uses_image_classifier():
            raise ValueError("eval class source 'head' needs the 'classifier' section (the image classifier it "
                             "reads); add 'classifier: {}' or choose another class source")
        return self

    def to_yaml(self) -> str:
        """The resolved config as YAML text (loads back to an equal config)."""
        return yaml.safe_dump(json.loads(self.to_json()), sort_keys=False)

    def to_json(self) -> str:
        """The resolved config as compact JSON (stored in checkpoint metadata)."""
        return self.model_dump_json(by_alias=True)
