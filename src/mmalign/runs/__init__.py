"""One run: data, split, build, fit, evaluate, and its run folder; finished runs restored.

``mmalign.run`` is :func:`run`, ``mmalign.load_run`` is :func:`load_run`; :func:`run_spec` is
the grid runner every experiment engine calls.
"""

from mmalign.runs.device import apply_threads, available_cores, resolve_device, resolve_threads
from mmalign.runs.execute import IDENTITY_KEYS, RunPlan, build_model, load_data, run, run_spec
from mmalign.runs.folder import RUN_MARKERS, RunFolder, default_run_dir
from mmalign.runs.log import RunLog
from mmalign.runs.predictions import predictions_csv, softmax
from mmalign.runs.result import RunMeta, RunResult, SettingResult
from mmalign.runs.trained import TrainedModel, load_run

__all__ = [
    "apply_threads",
    "available_cores",
    "resolve_device",
    "resolve_threads",
    "IDENTITY_KEYS",
    "RunPlan",
    "build_model",
    "load_data",
    "run",
    "run_spec",
    "RUN_MARKERS",
    "RunFolder",
    "default_run_dir",
    "RunLog",
    "predictions_csv",
    "softmax",
    "RunMeta",
    "RunResult",
    "SettingResult",
    "TrainedModel",
    "load_run",
]
