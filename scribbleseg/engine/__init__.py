"""The engine: configuration, model / data factories, training, checkpoints, evaluation, prediction,
figures and the demo.

Public names are imported lazily (on first attribute access), so ``import scribbleseg.engine`` is
cheap and importing e.g. the config does not pull in the trainer.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExperimentConfig": "scribbleseg.engine.config_schema",
    "load_config": "scribbleseg.engine.config_loading",
    "build_method": "scribbleseg.engine.method_factory",
    "RunLayout": "scribbleseg.engine.run_layout",
    "build_datasets": "scribbleseg.engine.data_factory",
    "build_eval_dataset": "scribbleseg.engine.data_factory",
    "build_train_dataset": "scribbleseg.engine.data_factory",
    "save_model_checkpoint": "scribbleseg.engine.checkpoint",
    "load_model_checkpoint": "scribbleseg.engine.checkpoint",
    "Trainer": "scribbleseg.engine.trainer",
    "train": "scribbleseg.engine.trainer",
    "run_demo": "scribbleseg.engine.demo",
    "evaluate": "scribbleseg.engine.evaluation",
    "EvalResult": "scribbleseg.engine.eval_results",
    "predict_paths": "scribbleseg.engine.prediction",
    "SlideSettings": "scribbleseg.engine.sliding_window",
    "slide_infer": "scribbleseg.engine.slide_inference",
    "plot_run": "scribbleseg.engine.run_figures",
    "overlay_grid": "scribbleseg.engine.prediction_figures",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import ``name`` from the module that defines it on first use."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'scribbleseg.engine' has no attribute '{name}'")
    return getattr(importlib.import_module(module_name), name)
