"""The engine, one room per concern: ``config``, ``runtime``, ``build``, ``runs``, ``inference``, ``loading``,
``evaluation``, ``prediction``, ``figures``, ``training`` (each room's docstring says what it owns and may import).

Public names are imported lazily (on first attribute access), so ``import scribbleseg.engine`` is
cheap and importing e.g. the config does not pull in the trainer.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExperimentConfig": "scribbleseg.engine.config.schema",
    "load_config": "scribbleseg.engine.config.loading",
    "build_method": "scribbleseg.engine.build.method_factory",
    "RunLayout": "scribbleseg.engine.runs.layout",
    "build_datasets": "scribbleseg.engine.build.data_factory",
    "build_eval_dataset": "scribbleseg.engine.build.data_factory",
    "build_train_dataset": "scribbleseg.engine.build.data_factory",
    "save_model_checkpoint": "scribbleseg.engine.runs.checkpoint",
    "load_model_checkpoint": "scribbleseg.engine.runs.checkpoint",
    "Trainer": "scribbleseg.engine.training.trainer",
    "train": "scribbleseg.engine.training.trainer",
    "evaluate": "scribbleseg.engine.evaluation.evaluate",
    "EvalResult": "scribbleseg.engine.evaluation.results",
    "predict_paths": "scribbleseg.engine.prediction.predict_files",
    "SlideSettings": "scribbleseg.engine.inference.windows",
    "slide_infer": "scribbleseg.engine.inference.slide",
    "InferenceSettings": "scribbleseg.engine.inference.settings",
    "load_model": "scribbleseg.engine.loading.model_loader",
    "plot_run": "scribbleseg.engine.figures.run_figures",
    "overlay_grid": "scribbleseg.engine.figures.prediction_figures",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import ``name`` from the module that defines it on first use."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'scribbleseg.engine' has no attribute '{name}'")
    return getattr(importlib.import_module(module_name), name)
