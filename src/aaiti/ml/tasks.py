"""The ``ml.train`` job function (runs in a worker process) and the helpers both sides of the job share.

Worker-side code: it imports neither the database nor the real-time layer. The parent resolves everything that
needs the database before queueing (the model's spec, candles from the ``candles`` table) and hands the worker
plain data: the spec, the artefact root, and, for stored candles, a ``.npz`` file it wrote under the artefact
root (candles are not put in the job row: a long hourly series is megabytes of JSON that every job listing would
load). The worker trains with :func:`aaiti.ml.training.train`, writes the artefact atomically with
:class:`~aaiti.ml.artifacts.ArtifactStore` and returns the metrics with the file's location and SHA-256; the
parent records the version in the job's success transaction.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aaiti.core.tasks.worker import Cancelled as JobCancelled
from aaiti.core.tasks.worker import JobContext
from aaiti.ml.artifacts import ArtifactIntegrityError, ArtifactStore
from aaiti.ml.estimators.base import Cancelled as FitCancelled
from aaiti.trading.candles import Candles

CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
INPUTS_DIRNAME = ".inputs"


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, tuples as lists, NaN and infinities as ``None``
    (the metrics already report why a value is missing; JSON and PostgreSQL's JSONB have no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_candles_file(directory: Path, candles: Candles) -> tuple[Path, str]:
    """Write ``candles`` for a training job (atomically); returns the path and the file's SHA-256."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{secrets.token_hex(16)}.npz"
    tmp = directory / f".{final.name}.tmp"
    arrays = {name: np.ascontiguousarray(getattr(candles, name)) for name in CANDLE_COLUMNS}
    try:
        with open(tmp, "xb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final, hashlib.sha256(final.read_bytes()).hexdigest()


def read_candles_file(path: Path, sha256: str) -> dict[str, list[Any]]:
    """The candle columns as lists (the ``candles`` spec field), after checking the file is the one the parent
    wrote. ``allow_pickle=False``: the file holds plain arrays only."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactIntegrityError("the training input file does not match its recorded SHA-256")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name].tolist() for name in CANDLE_COLUMNS}


def train_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Job ``ml.train``: fit, score, write the artefact; returns the result without the artefact bytes.

    ``params``: ``model_id``, ``version``, ``spec`` (a training spec without candles), ``artifact_root``,
    ``keep`` and optionally ``candles_file`` / ``candles_sha256``. Cancellation (between epochs, trees, folds)
    ends the job as *cancelled*; a model that cannot be fitted ends it as *failed* with the reason.
    """
    from aaiti.ml.training import train

    spec = dict(params["spec"])
    candles_file = params.get("candles_file")
    try:
        if candles_file:
            spec.pop("dataset", None)
            spec["candles"] = read_candles_file(Path(candles_file), str(params["candles_sha256"]))
        try:
            result = train(spec, lambda fraction, message: ctx.report(fraction, message), ctx.cancelled)
        except FitCancelled as exc:
            raise JobCancelled(str(exc)) from None
        ctx.check_cancelled()
        artifact = result.pop("artifact")
        # One more than the parent keeps: the write must not remove a file whose version row still exists
        # before the parent has recorded this version (it prunes rows and files together afterwards).
        store = ArtifactStore(params["artifact_root"], keep=int(params["keep"]) + 1)
        stored = store.write(str(params["model_id"]), int(params["version"]), artifact["bytes"])
        if stored.sha256 != artifact["sha256"]:
            raise ArtifactIntegrityError("the artefact written differs from the one trained")
        result["artifact"] = {
            "format": artifact["format"],
            "sha256": stored.sha256,
            "size": stored.size,
            "version": stored.version,
            "path": stored.path.relative_to(store.root).as_posix(),
        }
        ctx.report(1.0, f"version {stored.version} written", force=True)
        return dict(json_safe(result))
    finally:
        if candles_file:
            Path(candles_file).unlink(missing_ok=True)


def _day(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


REPORT_METRICS = (
    "mae",
    "rmse",
    "mape",
    "r2",
    "mase",
    "theil_u",
    "rmse_skill",
    "directional_accuracy",
    "precision_up",
    "recall_up",
    "f1_up",
    "coverage",
    "interval_width",
    "brier",
)


def metrics_report(result: Mapping[str, Any], *, source: str = "") -> str:
    """A terminal report of one training: data, windows, the model's metrics beside the naive forecast's (the
    same numbers the API stores), the nulls' reasons and the forecast from the last candle."""
    metrics = result["metrics"]
    spec = result["spec"]
    data = result["data_window"]
    train_w = result["training_window"]
    test_w = result["test_window"]
    lines = [
        f"algorithm   {result['algorithm']} (requested {result['requested_algorithm']}), kind {result['kind']}",
        f"data        {source or spec.get('dataset') or 'candles'}: {data['n_bars']} bars "
        f"{_day(data['start_ts'])} .. {_day(data['end_ts'])} UTC",
        f"target      {spec['target']} at horizon {spec['horizon']}, interval level {spec['interval_level']}, "
        f"seed {spec['seed']}",
        f"training    {train_w['n_bars']} bars {_day(train_w['start_ts'])} .. {_day(train_w['end_ts'])}",
        f"evaluation  {metrics['method']}, {test_w['n_origins']} out-of-sample origins "
        f"{_day(test_w['first_origin_ts'])} .. {_day(test_w['last_origin_ts'])}",
        f"fingerprint {result['data_fingerprint']}",
        "",
        f"{'metric':<22}{'model':>16}{'naive':>16}",
    ]
    model, naive = metrics["model"], metrics["naive"]
    for name in REPORT_METRICS:
        if name in model or name in naive:
            lines.append(f"{name:<22}{_num(model.get(name)):>16}{_num(naive.get(name)):>16}")
    for group in ("policy",):
        if group in metrics:
            lines.append("")
            lines.extend(f"{group}.{k:<15}{_num(v):>16}" for k, v in metrics[group].items())
    reasons = metrics.get("null_reasons") or {}
    if reasons:
        lines.append("")
        lines.extend(f"null {k}: {v}" for k, v in sorted(reasons.items()))
    fc = result["forecast"]
    lines.append("")
    lines.append(f"forecast from the close of {_day(fc['origin_ts'])} ({_num(fc['origin_close'])}):")
    for step in fc["steps"]:
        if "price" in step:
            text = (
                f"price {_num(step['price'])} [{_num(step['price_lower'])}, {_num(step['price_upper'])}], "
                f"log return {_num(step['log_return'])}"
            )
        elif "prob_up" in step:
            text = f"P(up) {_num(step['prob_up'])}"
        else:
            text = f"position {_num(step.get('position'))}"
        lines.append(f"  step {step['step']} ({_day(step['ts'])}): {text}")
    lines.append(
        f"direction {fc['direction']}, confidence {_num(fc['confidence'])}; fitted in {result['duration_s']:.2f} s"
    )
    return "\n".join(lines)
