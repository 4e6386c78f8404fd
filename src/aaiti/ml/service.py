"""The models service: CRUD, training as a job, versions, comparison, predictions and live accuracy.

Transactions: functions take the caller's unit of work and never commit; events are published and files removed
only after the commit (``uow.after_commit``).

Training lifecycle (``ml_models.training_status``): ``untrained`` -> ``training`` -> ``trained`` | ``failed``.

- ``POST /train`` validates the spec against its data (422 early), takes a job slot (429 beyond the per-user
  cap), marks the model ``training`` and points ``training_job_id`` at the job, all in one transaction.
- The job (``ml.train``, :func:`aaiti.ml.tasks.train_job`) fits, scores and writes the artefact in a worker.
- Success: :func:`_on_train_success` runs in the parent inside the transaction that marks the job succeeded; it
  records the :class:`ModelVersion`, sets ``trained``, the metrics and ``last_trained``, prunes versions beyond
  :data:`KEEP_VERSIONS` (rows and files) and publishes ``model_trained``.
- Failure or cancellation: the job kind's ``on_end`` hook settles the model in the transaction that ends the
  job; jobs a crashed process left behind are settled by :meth:`MLRuntime.reconcile` at the next start; every
  write path on that model and (without writing) every read compute the same :func:`effective_status`. A
  failed job (including "interrupted by restart" and a success whose result could not be stored) -> ``failed``
  with the job's error; a cancelled one -> the
  status the model had before (recorded in the job's params); a job that vanished -> ``failed``. Each
  settlement is audited and announced.

Live accuracy (``performance_metrics["live"]``): when the candle a stored prediction targeted is in the data
(a later predict call sees it) or closes on the live feed (:mod:`aaiti.ml.live`), its actual is recorded with
the outcome (direction hit, absolute error, interval coverage). Over the newest :data:`LIVE_WINDOW` resolved
predictions of the current version at the model's own horizon, the rolling directional accuracy is compared
with the evaluation's accuracy ``p``: the drift flag is raised when at least :data:`LIVE_MIN_RESOLVED`
directional calls resolved and the rolling accuracy is below ``p - 2 * sqrt(p' * (1 - p') / n)`` (``p'`` =
``p`` clipped to [0.1, 0.9]): a one-sided test at about 2.3 % that the live hit rate is worse than the
evaluation's, not just noisier.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from aaiti.core.audit import AuditContext, Outcome, record_audit
from aaiti.core.clock import Clock
from aaiti.core.context import CoreComponents
from aaiti.core.db.base import utcnow
from aaiti.core.db.session import UnitOfWork
from aaiti.core.errors import Conflict, Invalid, NotFound, Unavailable
from aaiti.core.principal import Principal
from aaiti.core.realtime.publisher import Publisher
from aaiti.core.tasks import service as job_service
from aaiti.core.tasks.models import Job, JobStatus
from aaiti.core.tasks.registry import JobKind, register
from aaiti.ml import repository as repo
from aaiti.ml.artifacts import ArtifactIntegrityError, ArtifactStore, verify_sha256
from aaiti.ml.estimators.registry import SEED_ALIASES, list_algorithms, resolve
from aaiti.ml.models import MLModel, ModelVersion, Prediction
from aaiti.ml.schemas import (
    AlgorithmsOut,
    CompareIn,
    CompareOut,
    JobRef,
    MetricRow,
    ModelCreate,
    ModelOut,
    ModelPredictionEvent,
    ModelTrainedEvent,
    ModelUpdate,
    PredictIn,
    PredictionOut,
    RankedModel,
    VersionOut,
)
from aaiti.ml.tasks import INPUTS_DIRNAME, json_safe, write_candles_file
from aaiti.trading.candles import Candles

if TYPE_CHECKING:
    from aaiti.market.feed import CandleBus
    from aaiti.ml.live import LiveTracker

log = structlog.get_logger(__name__)

TRAIN_KIND = "ml.train"
KEEP_VERSIONS = 5
"""Model versions kept per model (rows and artefact files); older ones are removed after each training."""
ARTIFACTS_DIRNAME = "artifacts"
LIVE_WINDOW = 20
LIVE_MIN_RESOLVED = 10
LOADED_MODEL_CACHE = 8
SPEC_FIELDS = (
    "target",
    "horizon",
    "interval_level",
    "seed",
    "features",
    "evaluation",
    "start_ts",
    "end_ts",
)
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "mase", "theil_u", "interval_width", "brier"})
HIGHER_IS_BETTER = frozenset({"r2", "rmse_skill", "directional_accuracy", "precision_up", "recall_up", "f1_up"})
EVALUATION_ROWS = (
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
Status = Literal["untrained", "training", "trained", "failed"]


# --------------------------------------------------------------------------------------------- job kind


class TrainJobParams(BaseModel):
    """What the parent hands the ``ml.train`` worker (internal: never user-submitted)."""

    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    version: int = Field(ge=1)
    spec: dict[str, Any]
    artifact_root: str
    keep: int = Field(ge=1, le=100)
    previous_status: Literal["untrained", "trained", "failed"]
    candles_file: str | None = None
    candles_sha256: str | None = None


_RUNTIMES: dict[AsyncEngine, MLRuntime] = {}
"""Running runtimes by their database engine: the job runner's success hook gets a unit of work only, and
finds the publisher and clock of the app whose runner called it through the session's engine."""


async def _on_train_success(uow: UnitOfWork, job: Job, result: dict[str, Any]) -> dict[str, Any]:
    params = TrainJobParams.model_validate(job.params)
    runtime = _RUNTIMES.get(uow.session.bind) if isinstance(uow.session.bind, AsyncEngine) else None
    now = runtime.clock.now() if runtime is not None else utcnow()
    store = ArtifactStore(params.artifact_root, keep=params.keep)
    model_id = uuid.UUID(params.model_id)
    model = await uow.session.get(MLModel, model_id)
    artifact = result["artifact"]
    if model is None:
        # Deleted while it trained: the file the worker wrote afterwards has no owner.
        await asyncio.to_thread(store.delete_model, params.model_id)
        return {"model_id": params.model_id, "discarded": "the model was deleted while it trained"}
    if model.training_job_id != job.id or model.training_status != "training":
        await asyncio.to_thread(store.path(params.model_id, params.version).unlink, missing_ok=True)
        return {"model_id": params.model_id, "discarded": "the model no longer waits for this training"}
    version = ModelVersion(
        model_id=model.id,
        version=params.version,
        algorithm=result["algorithm"],
        artifact_path=artifact["path"],
        artifact_format=artifact["format"],
        sha256=artifact["sha256"],
        size=int(artifact["size"]),
        params=result["params"],
        spec=result["spec"],
        metrics=result["metrics"],
        training_window=result["training_window"],
        test_window=result["test_window"],
        data_window=result["data_window"],
        data_fingerprint=result["data_fingerprint"],
        details={
            "requested_algorithm": result.get("requested_algorithm"),
            "kind": result.get("kind"),
            "fit_info": result.get("fit_info"),
            "forecast": result.get("forecast"),
            "library_versions": result.get("versions"),
            "duration_s": result.get("duration_s"),
        },
        job_id=job.id,
        created_at=now,
    )
    uow.session.add(version)
    model.training_status = "trained"
    model.training_error = None
    model.last_trained = now
    model.performance_metrics = _performance(version, result.get("kind"))
    await uow.session.flush()
    pruned = await repo.prune_versions(uow.session, model.id, params.keep)
    await asyncio.to_thread(store.prune, params.model_id)
    record_audit(
        uow.session,
        AuditContext(),
        "models.train.succeeded",
        resource_type="model",
        resource_id=model.id,
        user_id=model.user_id,
        details={"job_id": str(job.id), "version": params.version, "pruned": pruned},
    )
    event = ModelTrainedEvent(
        model_id=model.id,
        name=model.name,
        status="trained",
        outcome="trained",
        version=params.version,
        job_id=job.id,
        error=None,
        metrics={"model": result["metrics"]["model"], "naive": result["metrics"]["naive"]},
    )
    _announce_after_commit(uow, runtime.core.publisher if runtime else None, "model_trained", model.user_id, event)
    return {
        "model_id": params.model_id,
        "version": params.version,
        "algorithm": result["algorithm"],
        "data_fingerprint": result["data_fingerprint"],
        "sha256": artifact["sha256"],
        "metrics": {"model": result["metrics"]["model"], "naive": result["metrics"]["naive"]},
    }


async def _on_train_end(uow: UnitOfWork, job: Job) -> None:
    """A training job failed or was cancelled: settle its model in the same transaction."""
    for model, found in await repo.training_models_with_jobs(uow.session):
        if found is not None and found.id == job.id:
            await settle_training(uow, model, job, uow.publisher)


register(
    JobKind(
        TRAIN_KIND,
        "aaiti.ml.tasks:train_job",
        TrainJobParams,
        on_success=_on_train_success,
        on_end=_on_train_end,
    )
)


def _performance(version: ModelVersion, kind: str | None) -> dict[str, Any]:
    return {
        "version": version.version,
        "algorithm": version.algorithm,
        "kind": kind,
        "target": version.spec.get("target"),
        "horizon": version.spec.get("horizon"),
        "evaluation": version.metrics,
        "training_window": version.training_window,
        "test_window": version.test_window,
        "data_window": version.data_window,
        "data_fingerprint": version.data_fingerprint,
        "live": None,
    }


def _announce_after_commit(
    uow: UnitOfWork, publisher: Publisher | None, event: str, owner_id: uuid.UUID, payload: BaseModel
) -> None:
    if publisher is None:
        return
    body = payload.model_dump(mode="json")
    room = f"user:{owner_id}"

    async def send() -> None:
        await publisher.publish(event, body, room)

    uow.after_commit(send)


# --------------------------------------------------------------------------------------------- runtime


class MLRuntime:
    """Per-app state: the artefact store, loaded-model cache and the status reconciler."""

    def __init__(self, core: CoreComponents) -> None:
        self.core = core
        self.clock: Clock = core.clock
        self.root = (Path(core.settings.var_dir) / ARTIFACTS_DIRNAME).resolve()
        self.store = ArtifactStore(self.root, keep=KEEP_VERSIONS)
        self.inputs = self.root / INPUTS_DIRNAME
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._predict_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.live: LiveTracker | None = None

    @property
    def max_active(self) -> int:
        return self.core.settings.jobs.max_concurrent_per_user

    async def start(self, bus: CandleBus | None = None) -> None:
        """Sweep, reconcile, and when the market runtime runs, follow its closed candles (``aaiti.ml.live``)."""
        await asyncio.to_thread(self._sweep_inputs)
        await self.reconcile()
        if bus is not None:
            from aaiti.ml.live import LiveTracker

            self.live = LiveTracker(self, bus)
            self.live.start()

    async def stop(self) -> None:
        if self.live is not None:
            await self.live.stop()
            self.live = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _sweep_inputs(self) -> None:
        """Training input files left by jobs that never ran (the runner marked them failed at start-up)."""
        if self.inputs.is_dir():
            for path in self.inputs.iterdir():
                path.unlink(missing_ok=True)

    async def reconcile(self) -> int:
        """Settle every model whose training job ended without recording a version. Returns how many."""
        async with self.core.db.read() as session:
            pending = [m.id for m, job in await repo.training_models_with_jobs(session) if _ended(m, job)]
        if not pending:
            return 0
        async with self.core.db.unit_of_work() as uow:
            settled = 0
            for model, job in await repo.training_models_with_jobs(uow.session, pending):
                settled += await settle_training(uow, model, job, self.core.publisher)
            await uow.commit()
        return settled

    # Prediction runs in a thread, one at a time: model code must not block the event loop, and one
    # BLAS/torch thread each keeps predictions from oversubscribing the cores the API shares with workers.
    def predict_sync(
        self, version: ModelVersion, candles: Candles, horizon: int | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from aaiti.ml.features import build_training_data
        from aaiti.ml.training import load_model

        path = (self.root / version.artifact_path).resolve()
        if not path.is_relative_to(self.root):
            raise ArtifactIntegrityError("the recorded artefact path leaves the artefact folder")
        with self._predict_lock:
            data = path.read_bytes()
            verify_sha256(data, version.sha256)
            loaded = self._cache.get(version.sha256)
            if loaded is None:
                loaded = load_model(data, version.sha256)
                self._cache[version.sha256] = loaded
                while len(self._cache) > LOADED_MODEL_CACHE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(version.sha256)
            forecast = loaded.predict(candles, horizon)
            built = build_training_data(candles, loaded.features, loaded.horizon)
            row = {name: float(built.features[-1, i]) for i, name in enumerate(built.feature_names)}
        return json_safe(forecast), json_safe(row)

    def forget(self, sha256s: list[str]) -> None:
        with self._predict_lock:
            for sha in sha256s:
                self._cache.pop(sha, None)


@asynccontextmanager
async def ml_runtime(core: CoreComponents, _gateway: Any, state: Any) -> AsyncIterator[None]:
    """The ``DOMAIN_RUNTIMES`` entry: artefact folder, status reconciler, success-hook wiring."""
    runtime = MLRuntime(core)
    _RUNTIMES[core.db.engine] = runtime
    state.ml = runtime
    market = getattr(state, "market", None)  # started before this runtime (DOMAIN_RUNTIMES order)
    try:
        await runtime.start(market.bus if market is not None else None)
        yield
    finally:
        await runtime.stop()
        _RUNTIMES.pop(core.db.engine, None)


# --------------------------------------------------------------------------------------------- status


def _previous_status(job: Job) -> Status:
    previous = (job.params or {}).get("previous_status")
    return previous if previous in ("untrained", "trained", "failed") else "untrained"


def effective_status(model: MLModel, job: Job | None) -> tuple[Status, str | None]:
    """The model's status once its training job's outcome is taken into account (see the module docstring)."""
    status: Status = model.training_status  # type: ignore[assignment]
    if status != "training":
        return status, model.training_error
    if job is None:
        return "failed", "the training job was lost"
    if job.status in (JobStatus.queued.value, JobStatus.running.value):
        return "training", model.training_error
    if job.status == JobStatus.cancelled.value:
        return _previous_status(job), model.training_error
    if job.status == JobStatus.failed.value:
        return "failed", job.error or "training failed"
    # Succeeded: the success hook records the version in the very transaction that marks the job succeeded, so
    # this is only a read that saw the job after that commit and the model before it (separate statements on
    # PostgreSQL's read committed); the model row says "trained" by now.
    return "training", model.training_error


def _ended(model: MLModel, job: Job | None) -> bool:
    return effective_status(model, job)[0] != "training"


async def settle_training(uow: UnitOfWork, model: MLModel, job: Job | None, publisher: Publisher | None) -> int:
    """Write the outcome of an ended training that recorded no version. Returns 1 if the model changed."""
    status, error = effective_status(model, job)
    if status == "training" or model.training_status != "training":
        return 0
    cancelled = job is not None and job.status == JobStatus.cancelled.value
    model.training_status = status
    if not cancelled:
        model.training_error = error
    outcome: Literal["failed", "cancelled"] = "cancelled" if cancelled else "failed"
    record_audit(
        uow.session,
        AuditContext(),
        f"models.train.{outcome}",
        resource_type="model",
        resource_id=model.id,
        outcome=Outcome.success if cancelled else Outcome.failed,
        user_id=model.user_id,
        details={"job_id": str(job.id) if job else None, "error": error if not cancelled else None},
    )
    if job is not None and (job.params or {}).get("candles_file"):
        await asyncio.to_thread(Path(job.params["candles_file"]).unlink, missing_ok=True)
    event = ModelTrainedEvent(
        model_id=model.id,
        name=model.name,
        status=status,
        outcome=outcome,
        version=None,
        job_id=job.id if job else None,
        error=None if cancelled else error,
        metrics=None,
    )
    _announce_after_commit(uow, publisher, "model_trained", model.user_id, event)
    return 1


async def _owned_for_write(uow: UnitOfWork, runtime: MLRuntime, owner: Principal, model_id: uuid.UUID) -> MLModel:
    """The owner's model, locked for update, with an ended training settled first."""
    model = await repo.get_model(uow.session, owner.id, model_id, for_update=True)
    if model is None:
        raise NotFound("model not found")
    if model.training_status == "training":
        job = await uow.session.get(Job, model.training_job_id) if model.training_job_id else None
        await settle_training(uow, model, job, runtime.core.publisher)
    return model


async def get_owned(session: AsyncSession, owner: Principal, model_id: uuid.UUID) -> MLModel:
    model = await repo.get_model(session, owner.id, model_id)
    if model is None:
        raise NotFound("model not found")
    return model


# --------------------------------------------------------------------------------------------- views


def algorithms() -> AlgorithmsOut:
    return AlgorithmsOut(items=list_algorithms(), seed_aliases=dict(SEED_ALIASES))


def _better(
    metric: str, model: float | None, naive: float | None, level: float | None
) -> Literal["model", "naive", "tie"] | None:
    if model is None or naive is None:
        return None
    if metric == "coverage":
        if level is None:
            return None
        a, b = abs(model - level), abs(naive - level)
    elif metric in LOWER_IS_BETTER:
        a, b = model, naive
    elif metric in HIGHER_IS_BETTER:
        a, b = -model, -naive
    else:
        return None
    return "tie" if math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) else ("model" if a < b else "naive")


def evaluation_rows(metrics: dict[str, Any] | None) -> list[MetricRow] | None:
    """The model's out-of-sample metrics beside the naive forecast's, with which scored better."""
    if not metrics or "model" not in metrics:
        return None
    model, naive = metrics["model"], metrics.get("naive") or {}
    level = metrics.get("level")
    rows = []
    for name in EVALUATION_ROWS:
        if name not in model and name not in naive:
            continue
        m, n = model.get(name), naive.get(name)
        rows.append(MetricRow(metric=name, model=m, naive=n, better=_better(name, m, n, level)))
    return rows


def job_ref(job: Job | None) -> JobRef | None:
    if job is None:
        return None
    return JobRef(
        id=job.id,
        kind=job.kind,
        status=job.status,
        progress=job.progress,
        message=job.message,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def model_out(model: MLModel, job: Job | None, version: ModelVersion | None = None) -> ModelOut:
    status, error = effective_status(model, job)
    algorithm: str
    name: str
    family: str
    kind: str
    try:
        info = resolve(model.algorithm_type)
        algorithm, name, family, kind = info.id, info.name, info.family, info.kind
    except Invalid:  # a row from an older registry: still listed, never trained again
        algorithm, name, family, kind = model.algorithm_type, model.algorithm_type, "unknown", "unknown"
    spec = dict(model.training_spec or {})
    performance = model.performance_metrics
    return ModelOut(
        id=model.id,
        name=model.name,
        algorithm=algorithm,
        algorithm_type=model.algorithm_type,
        requested_algorithm=spec.get("requested_algorithm"),
        algorithm_name=name,
        family=family,
        kind=kind,
        target_timeframe=model.target_timeframe,
        symbols=list(model.symbols or []),
        parameters=dict(model.parameters or {}),
        training={k: v for k, v in spec.items() if k != "requested_algorithm"},
        training_status=status,
        training_error=error,
        training_job=job_ref(job),
        performance_metrics=performance,
        evaluation=evaluation_rows((performance or {}).get("evaluation")),
        latest_version=VersionOut.model_validate(version) if version is not None else None,
        created_at=model.created_at,
        last_trained=model.last_trained,
    )


async def list_models(
    session: AsyncSession, owner: Principal, *, limit: int, offset: int, status: str | None
) -> tuple[list[ModelOut], int]:
    rows, total = await repo.list_models(session, owner.id, limit=limit, offset=offset, status=status)
    jobs = await repo.jobs_by_id(session, [m.training_job_id for m in rows if m.training_job_id])
    return [model_out(m, jobs.get(m.training_job_id) if m.training_job_id else None) for m in rows], total


async def model_detail(session: AsyncSession, owner: Principal, model_id: uuid.UUID) -> ModelOut:
    model = await get_owned(session, owner, model_id)
    job = await session.get(Job, model.training_job_id) if model.training_job_id else None
    return model_out(model, job, await repo.latest_version(session, model.id))


# --------------------------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class DataChoice:
    """Where a model's candles come from: a bundled dataset, or a stored series (source, symbol, timeframe)."""

    dataset: str | None
    symbol: str
    timeframe: str
    candle_source: str | None

    @property
    def key(self) -> str:
        if self.dataset is not None:
            return f"dataset:{self.dataset}"
        return f"stored:{self.candle_source}:{self.symbol}:{self.timeframe}"


def _choice(model: MLModel) -> DataChoice:
    spec = model.training_spec or {}
    return DataChoice(spec.get("dataset"), model.symbols[0], model.target_timeframe, spec.get("candle_source"))


def _bundled(name: str) -> Any:
    from aaiti.data import bundled_datasets

    for dataset in bundled_datasets():
        if dataset.name == name:
            return dataset
    known = ", ".join(d.name for d in bundled_datasets())
    raise Invalid(f"unknown dataset {name!r}; bundled datasets: {known}")


async def _resolve_choice(session: AsyncSession, body: ModelCreate) -> DataChoice:
    from aaiti.market.symbols import normalize_symbol

    if body.dataset is not None:
        dataset = _bundled(body.dataset)
        symbol = dataset.symbol.upper()
        if body.symbols is not None and [normalize_symbol(s) for s in body.symbols] != [symbol]:
            raise Invalid(f"dataset {body.dataset} holds {symbol} candles, not {body.symbols}")
        if body.target_timeframe is not None and body.target_timeframe != dataset.timeframe:
            raise Invalid(f"dataset {body.dataset} holds {dataset.timeframe} candles, not {body.target_timeframe}")
        if body.candle_source is not None:
            raise Invalid("candle_source applies to stored candles, not to a bundled dataset")
        return DataChoice(body.dataset, symbol, dataset.timeframe, None)
    if not body.symbols or not body.target_timeframe:
        raise Invalid("give a bundled dataset, or symbols and target_timeframe of stored candles")
    from aaiti.market.repository import series_summary

    symbol = normalize_symbol(body.symbols[0])
    series = [s for s in await series_summary(session, symbol) if s.timeframe == body.target_timeframe]
    if body.candle_source is not None:
        series = [s for s in series if s.source == body.candle_source]
    if not series:
        raise Invalid(
            f"no stored {symbol} {body.target_timeframe} candles"
            + (f" from {body.candle_source}" if body.candle_source else "")
            + "; import or backfill them first, or train on a bundled dataset"
        )
    best = max(series, key=lambda s: s.count)
    return DataChoice(None, symbol, body.target_timeframe, best.source)


async def _load_candles(
    session: AsyncSession, choice: DataChoice, *, start_ts: int | None, end_ts: int | None
) -> Candles:
    """Candles of ``choice`` with open time in [start_ts, end_ts] (inclusive, epoch ms; ``None`` = open)."""
    from aaiti.ml.training import MAX_BARS

    if choice.dataset is not None:
        from aaiti.data import load_bundled

        candles: Candles = await asyncio.to_thread(load_bundled, choice.dataset)
    else:
        from aaiti.market.repository import fetch_series

        assert choice.candle_source is not None
        stored = await fetch_series(
            session,
            source=choice.candle_source,
            symbol=choice.symbol,
            timeframe=choice.timeframe,
            start_ms=start_ts,
            end_ms=None if end_ts is None else end_ts + 1,
            limit=MAX_BARS + 1,
            latest=True,
        )
        candles = stored.candles
    lo = 0 if start_ts is None else int(np.searchsorted(candles.ts, start_ts, side="left"))
    hi = len(candles) if end_ts is None else int(np.searchsorted(candles.ts, end_ts, side="right"))
    return candles.slice(lo, hi)


def _columns(candles: Candles) -> dict[str, list[Any]]:
    return {
        "ts": candles.ts.tolist(),
        "open": candles.open.tolist(),
        "high": candles.high.tolist(),
        "low": candles.low.tolist(),
        "close": candles.close.tolist(),
        "volume": candles.volume.tolist(),
    }


def _train_spec(algorithm: str, params: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    out = {"algorithm": algorithm, "params": params, **{k: spec[k] for k in SPEC_FIELDS if k in spec}}
    if spec.get("dataset"):
        out["dataset"] = spec["dataset"]
    return out


async def _validate(
    session: AsyncSession, choice: DataChoice, algorithm: str, params: dict[str, Any], spec: dict[str, Any]
) -> tuple[dict[str, Any], Candles | None]:
    """Check a spec against its data (``aaiti.ml.training.check_spec``, run off the event loop). Returns the
    normalised spec, and for stored candles the candles the worker will train on."""
    from aaiti.ml.training import check_spec

    train_spec = _train_spec(algorithm, params, spec)
    candles: Candles | None = None
    if choice.dataset is None:
        candles = await _load_candles(session, choice, start_ts=spec.get("start_ts"), end_ts=spec.get("end_ts"))
        train_spec["candles"] = _columns(candles)
    normalised = await asyncio.to_thread(check_spec, train_spec)
    return normalised, candles


def _stored_spec(body: ModelCreate, choice: DataChoice, requested: str) -> dict[str, Any]:
    values = body.model_dump(mode="json")
    spec = {k: values[k] for k in SPEC_FIELDS}
    spec.update(
        {
            "source": "dataset" if choice.dataset else "stored",
            "dataset": choice.dataset,
            "candle_source": choice.candle_source,
            "requested_algorithm": requested,
        }
    )
    return spec


# --------------------------------------------------------------------------------------------- CRUD
#
# Write paths do their slow part (loading candles, checking the spec against them, predicting) in a read
# session first, then take the write transaction only to re-check and store: on SQLite the write transaction
# holds the database's one write lock from its first statement.


def _config(model: MLModel) -> tuple[Any, Any]:
    return json_key(model.parameters), json_key(model.training_spec)


async def create_model(
    uow: UnitOfWork, runtime: MLRuntime, ctx: AuditContext, owner: Principal, body: ModelCreate
) -> MLModel:
    info = resolve(body.algorithm)
    ok, reason = info.availability
    if not ok:
        raise Unavailable(f"{info.id} is unavailable: {reason}")
    async with runtime.core.db.read() as session:
        choice = await _resolve_choice(session, body)
        spec = _stored_spec(body, choice, body.algorithm)
        normalised, _ = await _validate(session, choice, info.id, body.parameters, spec)
    model = MLModel(
        user_id=owner.id,
        name=body.name,
        algorithm_type=info.id,
        target_timeframe=choice.timeframe,
        symbols=[choice.symbol],
        parameters=normalised["params"],
        training_spec=spec,
        training_status="untrained",
        created_at=runtime.clock.now(),
    )
    uow.session.add(model)
    await uow.session.flush()
    record_audit(
        uow.session,
        ctx,
        "models.create",
        resource_type="model",
        resource_id=model.id,
        details={"algorithm": info.id, "requested": body.algorithm, "data": choice.key},
    )
    return model


async def _read_owned(session: AsyncSession, owner: Principal, model_id: uuid.UUID) -> tuple[MLModel, Status]:
    model = await get_owned(session, owner, model_id)
    job = await session.get(Job, model.training_job_id) if model.training_job_id else None
    return model, effective_status(model, job)[0]


async def update_model(
    uow: UnitOfWork, runtime: MLRuntime, ctx: AuditContext, owner: Principal, model_id: uuid.UUID, body: ModelUpdate
) -> MLModel:
    given = body.model_fields_set
    if "name" in given and (body.name is None or not body.name.strip()):
        raise Invalid("name: must not be empty")
    config = given - {"name", "live_predict"}
    if "live_predict" in given and body.live_predict is None:
        raise Invalid("live_predict: must not be null")
    for field in config - {"start_ts", "end_ts"}:
        if getattr(body, field) is None:
            raise Invalid(f"{field}: must not be null")
    new_params: dict[str, Any] | None = None
    new_spec: dict[str, Any] | None = None
    async with runtime.core.db.read() as session:
        current, status = await _read_owned(session, owner, model_id)
        snapshot = _config(current)
        if config:
            if status == "training":
                raise Conflict("the model is training; cancel the job or wait before changing its configuration")
            spec = dict(current.training_spec or {})
            values = body.model_dump(mode="json", include=config)
            for field in SPEC_FIELDS:
                if field in values:
                    spec[field] = values[field]
            params = {**current.parameters, **(body.parameters or {})} if "parameters" in config else current.parameters
            normalised, _ = await _validate(session, _choice(current), current.algorithm_type, params, spec)
            if json_key(normalised["params"]) != json_key(current.parameters) or any(
                spec.get(k) != (current.training_spec or {}).get(k) for k in SPEC_FIELDS
            ):
                new_params, new_spec = normalised["params"], spec
    model = await _owned_for_write(uow, runtime, owner, model_id)
    changed: list[str] = []
    if new_spec is not None:
        if model.training_status == "training" or _config(model) != snapshot:
            raise Conflict("the model changed while this update was checked; reload and try again")
        model.parameters = new_params or {}
        model.training_spec = new_spec
        model.training_status = "untrained"
        model.performance_metrics = None
        model.training_error = None
        changed.extend(sorted(config))
    if "name" in given and body.name is not None and body.name.strip() != model.name:
        model.name = body.name.strip()
        changed.append("name")
    if body.live_predict is not None and bool((model.training_spec or {}).get("live_predict")) != body.live_predict:
        if body.live_predict and uses_volume(model.training_spec):
            raise Invalid(
                "live_predict: live bars carry no volume and the model's features include volume_z; "
                "remove that feature (and retrain) to predict on live bars"
            )
        # A new dict: the JSON column tracks assignment, not in-place changes. live_predict is no SPEC_FIELD,
        # so the trained version keeps matching the configuration.
        model.training_spec = {**(model.training_spec or {}), "live_predict": body.live_predict}
        changed.append("live_predict")
    if changed:
        record_audit(
            uow.session, ctx, "models.update", resource_type="model", resource_id=model.id, details={"fields": changed}
        )
    return model


def uses_volume(spec: dict[str, Any] | None) -> bool:
    """Whether a training spec's features read the volume column (live bars have none)."""
    return "volume_z" in json_key((spec or {}).get("features"))


async def delete_model(
    uow: UnitOfWork, runtime: MLRuntime, ctx: AuditContext, owner: Principal, model_id: uuid.UUID
) -> None:
    """Delete the model with its versions and predictions (database cascades) and, after the commit, its
    artefact files. A running training is cancelled; a model that backtests reference is refused (409)."""
    model = await _owned_for_write(uow, runtime, owner, model_id)
    leftovers: list[Path] = []
    if model.training_status == "training" and model.training_job_id is not None:
        job = await uow.session.get(Job, model.training_job_id)
        if job is not None and (job.params or {}).get("candles_file"):
            leftovers.append(Path(job.params["candles_file"]))
        with suppress(Conflict, NotFound):
            await job_service.cancel_job(uow, runtime.core.runner, runtime.clock, ctx, owner, model.training_job_id)
    versions, _ = await repo.list_versions(uow.session, model.id, limit=10_000, offset=0)
    shas = [v.sha256 for v in versions]
    mid = model.id
    try:
        await uow.session.execute(delete(MLModel).where(MLModel.id == mid))
        await uow.session.flush()
    except IntegrityError:
        raise Conflict("the model is referenced by backtests; delete those first") from None
    record_audit(uow.session, ctx, "models.delete", resource_type="model", resource_id=mid)

    async def remove_files() -> None:
        runtime.forget(shas)
        await asyncio.to_thread(runtime.store.delete_model, str(mid))
        for path in leftovers:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    uow.after_commit(remove_files)


# --------------------------------------------------------------------------------------------- training


async def start_training(
    uow: UnitOfWork, runtime: MLRuntime, ctx: AuditContext, owner: Principal, model_id: uuid.UUID
) -> tuple[Job, MLModel, int]:
    async with runtime.core.db.read() as session:
        current, status = await _read_owned(session, owner, model_id)
        if status == "training":
            raise Conflict(f"the model is already training (job {current.training_job_id})")
        snapshot = _config(current)
        choice = _choice(current)
        normalised, candles = await _validate(
            session, choice, current.algorithm_type, current.parameters, dict(current.training_spec or {})
        )
    params: dict[str, Any] = {
        "model_id": str(current.id),
        "spec": normalised,
        "artifact_root": str(runtime.root),
        "keep": KEEP_VERSIONS,
    }
    written: Path | None = None
    if candles is not None:
        written, sha = await asyncio.to_thread(write_candles_file, runtime.inputs, candles)
        params.update({"candles_file": str(written), "candles_sha256": sha})
    try:
        model = await _owned_for_write(uow, runtime, owner, model_id)
        if model.training_status == "training":
            raise Conflict(f"the model is already training (job {model.training_job_id})")
        if _config(model) != snapshot:
            raise Conflict("the model changed while the training was prepared; try again")
        version = await repo.max_version(uow.session, model.id) + 1
        params.update({"version": version, "previous_status": model.training_status})
        job = await job_service.submit_job(
            uow,
            runtime.core.runner,
            runtime.clock,
            ctx,
            owner,
            TRAIN_KIND,
            params,
            max_active=runtime.max_active,
            user_facing=False,
        )
    except BaseException:
        if written is not None:
            written.unlink(missing_ok=True)
        raise
    model.training_status = "training"
    model.training_job_id = job.id
    record_audit(
        uow.session,
        ctx,
        "models.train",
        resource_type="model",
        resource_id=model.id,
        details={"job_id": str(job.id), "version": version, "data": choice.key},
    )
    return job, model, version


async def list_versions(
    session: AsyncSession, owner: Principal, model_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[ModelVersion], int]:
    model = await get_owned(session, owner, model_id)
    return await repo.list_versions(session, model.id, limit=limit, offset=offset)


# --------------------------------------------------------------------------------------------- compare


def _rank_key(metric: str, value: float, level: float | None) -> float:
    if metric == "coverage":
        return abs(value - (level if level is not None else 0.0))
    return value if metric in LOWER_IS_BETTER else -value


async def compare(session: AsyncSession, owner: Principal, body: CompareIn) -> CompareOut:
    """Rank models trained on the same data and scored on the same test window by ``body.metric``."""
    models = [await get_owned(session, owner, mid) for mid in body.model_ids]
    versions = await repo.latest_versions(session, [m.id for m in models])
    missing = [m.name for m in models if m.id not in versions]
    if missing:
        raise Invalid(f"not comparable: never trained: {', '.join(missing)}")
    first = versions[models[0].id]

    def identity(v: ModelVersion) -> tuple[Any, ...]:
        return (
            v.data_fingerprint,
            json_key(v.test_window),
            v.spec.get("target"),
            v.spec.get("horizon"),
            v.spec.get("interval_level"),
        )

    reasons = []
    for m in models[1:]:
        v = versions[m.id]
        if v.data_fingerprint != first.data_fingerprint:
            reasons.append(f"{m.name} was trained on other data (fingerprint {v.data_fingerprint[:12]})")
        elif json_key(v.test_window) != json_key(first.test_window):
            reasons.append(f"{m.name} was scored on another test window")
        elif identity(v) != identity(first):
            reasons.append(f"{m.name} forecasts another target, horizon or interval level")
    if reasons:
        raise Invalid(
            "not comparable: models must share data fingerprint, test window, target, horizon and level; "
            + "; ".join(reasons),
            extra={"reasons": reasons},
        )
    metric = body.metric
    level = first.spec.get("interval_level")
    ranked: list[tuple[float, int, RankedModel]] = []
    unranked: list[RankedModel] = []
    for i, m in enumerate(models):
        v = versions[m.id]
        value = v.metrics["model"].get(metric)
        entry = RankedModel(
            rank=None,
            model_id=m.id,
            name=m.name,
            algorithm=v.algorithm,
            version=v.version,
            value=value,
            naive_value=v.metrics["naive"].get(metric),
            null_reason=(v.metrics.get("null_reasons") or {}).get(f"model.{metric}") if value is None else None,
            metrics=v.metrics["model"],
        )
        if value is None:
            unranked.append(entry)
        else:
            ranked.append((_rank_key(metric, value, level), i, entry))
    ranked.sort(key=lambda item: (item[0], item[1]))
    ordering: list[RankedModel] = []
    for rank, (_, _, entry) in enumerate(ranked, start=1):
        ordering.append(entry.model_copy(update={"rank": rank}))
    order: Literal["lower_is_better", "higher_is_better", "closest_to_level"] = (
        "closest_to_level"
        if metric == "coverage"
        else "lower_is_better"
        if metric in LOWER_IS_BETTER
        else "higher_is_better"
    )
    return CompareOut(
        metric=metric,
        order=order,
        data_fingerprint=first.data_fingerprint,
        target=str(first.spec.get("target")),
        horizon=int(first.spec.get("horizon", 1)),
        test_window=first.test_window or {},
        naive=first.metrics["naive"],
        ranking=ordering + unranked,
    )


def json_key(value: Any) -> str:
    """A canonical JSON text, to compare stored JSON values regardless of key order."""
    return json.dumps(value, sort_keys=True)


# --------------------------------------------------------------------------------------------- predictions


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def outcome_of(
    forecast: dict[str, Any], prediction_value: float, lower: float | None, upper: float | None, actual_close: float
) -> tuple[float, dict[str, Any]]:
    """The actual (in the prediction's units) and the outcome of one prediction whose target bar closed at
    ``actual_close``: ``hit`` (direction right; ``None`` when either side calls no direction), ``abs_error`` and
    ``covered`` (value models), ``brier`` (direction classifiers), and the realised log return."""
    origin_close = float(forecast["origin_close"])
    ret = math.log(actual_close / origin_close)
    kind = forecast["kind"]
    out: dict[str, Any] = {"actual_close": actual_close, "actual_log_return": ret, "hit": None}
    if kind == "value":
        actual = actual_close if forecast["target"] == "price" else ret
        direction = forecast.get("direction")
        if ret != 0 and direction in ("up", "down"):
            out["hit"] = (ret > 0) == (direction == "up")
        out["abs_error"] = abs(prediction_value - actual)
        out["covered"] = None if lower is None or upper is None else bool(lower <= actual <= upper)
    elif kind == "direction":
        actual = 1.0 if ret > 0 else 0.0
        if ret != 0 and prediction_value != 0.5:
            out["hit"] = (ret > 0) == (prediction_value > 0.5)
        out["brier"] = (prediction_value - actual) ** 2
    else:
        actual = ret
        if ret != 0 and prediction_value != 0:
            out["hit"] = (ret > 0) == (prediction_value > 0)
    return float(actual), out


def live_summary(
    outcomes: list[dict[str, Any]],
    n_resolved: int,
    evaluation: dict[str, Any] | None,
    *,
    version: int,
    horizon: int,
    window: int = LIVE_WINDOW,
    min_resolved: int = LIVE_MIN_RESOLVED,
) -> dict[str, Any]:
    """Rolling live accuracy over the newest ``window`` outcomes and the drift rule (module docstring)."""
    outcomes = outcomes[:window]
    hits = [bool(o["hit"]) for o in outcomes if o.get("hit") is not None]
    errors = [float(o["abs_error"]) for o in outcomes if o.get("abs_error") is not None]
    covered = [bool(o["covered"]) for o in outcomes if o.get("covered") is not None]
    model_eval = (evaluation or {}).get("model") or {}
    p = model_eval.get("directional_accuracy")
    n = len(hits)
    accuracy = sum(hits) / n if n else None
    out: dict[str, Any] = {
        "version": version,
        "horizon": horizon,
        "window": window,
        "n_resolved": n_resolved,
        "n_window": len(outcomes),
        "n_directional": n,
        "directional_accuracy": accuracy,
        "mae": sum(errors) / len(errors) if errors else None,
        "coverage": sum(covered) / len(covered) if covered else None,
        "evaluation": {
            "directional_accuracy": p,
            "mae": model_eval.get("mae"),
            "coverage": model_eval.get("coverage"),
        },
        "threshold": None,
        "drift": None,
        "drift_reason": None,
    }
    if p is None:
        out["drift_reason"] = "the evaluation has no directional accuracy to compare with"
    elif n < min_resolved or accuracy is None:
        out["drift_reason"] = f"needs {min_resolved} resolved directional calls in the window, has {n}"
    else:
        q = min(0.9, max(0.1, float(p)))
        threshold = float(p) - 2.0 * math.sqrt(q * (1.0 - q) / n)
        out["threshold"] = threshold
        out["drift"] = accuracy < threshold
        out["drift_reason"] = (
            f"rolling accuracy {accuracy:.3f} over {n} calls is "
            + ("below" if out["drift"] else "not below")
            + f" {threshold:.3f} (evaluation {float(p):.3f} minus two standard errors)"
        )
    return out


async def _resolve_actuals(
    session: AsyncSession, model: MLModel, candles: Candles, source_key: str, now: datetime
) -> int:
    """Record actuals for predictions whose target candle is in ``candles`` (those candles have closed)."""
    if len(candles) == 0:
        return 0
    pending = await repo.unresolved_predictions(session, model.id, through=_dt(int(candles.ts[-1])))
    resolved = 0
    for p in pending:
        forecast = p.forecast or {}
        if forecast.get("source") != source_key or p.target_time is None:
            continue
        target = _ms(p.target_time)
        i = int(np.searchsorted(candles.ts, target))
        if i >= len(candles) or int(candles.ts[i]) != target:
            p.resolved_at = now
            p.outcome = {"missing": "no candle opened at the target time; the actual is unknown"}
            continue
        close = float(candles.close[i])
        actual, outcome = outcome_of(forecast, p.prediction_value, p.lower_value, p.upper_value, close)
        p.actual_value = actual
        p.resolved_at = now
        p.outcome = json_safe(outcome)
        resolved += 1
    if pending:
        await session.flush()
    return resolved


def prediction_row(
    model: MLModel, version: ModelVersion, forecast: dict[str, Any], features: dict[str, Any], now: datetime
) -> Prediction:
    """The ``predictions`` row of one forecast (``forecast`` as ``predict_sync`` returned it, plus its source)."""
    last = forecast["steps"][-1]
    lower = upper = None
    if forecast["kind"] == "value":
        suffix = "price" if forecast["target"] == "price" else "log_return"
        lower, upper = last.get(f"{suffix}_lower"), last.get(f"{suffix}_upper")
    return Prediction(
        model_id=model.id,
        symbol=model.symbols[0],
        prediction_value=float(forecast["prediction_value"]),
        confidence=forecast.get("confidence"),
        features=features,
        timestamp=now,
        version=version.version,
        horizon=int(forecast["horizon"]),
        origin_time=_dt(int(forecast["origin_ts"])),
        target_time=_dt(int(last["ts"])),
        lower_value=lower,
        upper_value=upper,
        forecast=forecast,
    )


async def refresh_live(
    session: AsyncSession, model: MLModel, version: ModelVersion, kind: str, now: datetime
) -> dict[str, Any] | None:
    """Recompute ``performance_metrics["live"]`` for ``version`` (the model's latest) after predictions of it
    resolved or were stored; ``kind`` is the forecasts' kind (the RL trader's positions count at horizon 1).
    Returns the summary, or ``None`` for a model with no metrics (never trained)."""
    if model.performance_metrics is None:
        return None
    horizon = 1 if kind == "position" else int(version.spec.get("horizon", 1))
    outcomes, total = await repo.recent_outcomes(
        session, model.id, version=version.version, horizon=horizon, limit=LIVE_WINDOW
    )
    live = live_summary(
        outcomes, total, model.performance_metrics.get("evaluation"), version=version.version, horizon=horizon
    )
    live["updated_at"] = now.isoformat()
    model.performance_metrics = {**model.performance_metrics, "live": live}
    return live


def _version_matches(model: MLModel, version: ModelVersion) -> bool:
    """Whether ``version`` was trained with the model's current parameters and spec."""
    spec = model.training_spec or {}
    return json_key(version.params) == json_key(model.parameters) and all(
        json_key(version.spec.get(k)) == json_key(spec.get(k)) for k in SPEC_FIELDS
    )


async def predict(
    uow: UnitOfWork,
    runtime: MLRuntime,
    ctx: AuditContext,
    owner: Principal,
    model_id: uuid.UUID,
    body: PredictIn,
) -> tuple[Prediction, int, dict[str, Any] | None]:
    """Forecast with the latest version, verified by SHA-256; store it, resolve earlier predictions, update live
    accuracy. Nothing is stored when the artefact fails verification.

    The latest version serves while its configuration is the model's: also during a retraining or after a
    failed one; not after the parameters or spec changed (the model is then ``untrained``).
    """
    async with runtime.core.db.read() as session:
        current, status = await _read_owned(session, owner, model_id)
        version = await repo.latest_version(session, current.id)
        if status == "untrained" or version is None or not _version_matches(current, version):
            raise Conflict(f"the model is {status} and has no version for its configuration; train it first")
        choice = _choice(current)
        spec = current.training_spec or {}
        candles = await _load_candles(session, choice, start_ts=spec.get("start_ts"), end_ts=body.as_of)
    if len(candles) == 0:
        raise Invalid("no candles at or before as_of" if body.as_of is not None else "no candles to forecast from")
    train_end = int(version.training_window["end_ts"])
    if int(candles.ts[-1]) <= train_end:
        raise Invalid(
            f"the forecast origin {_dt(int(candles.ts[-1])).isoformat()} lies inside the window the model was "
            f"fitted on (up to {_dt(train_end).isoformat()}); choose a later as_of"
        )
    try:
        forecast, features = await asyncio.to_thread(runtime.predict_sync, version, candles, body.horizon)
    except ArtifactIntegrityError as exc:
        log.error("artifact_integrity_failed", model_id=str(current.id), version=version.version)
        raise Conflict(
            f"the artefact of version {version.version} failed its SHA-256 check and was not loaded ({exc}); "
            "retrain the model"
        ) from None
    except FileNotFoundError:
        raise Conflict(f"the artefact file of version {version.version} is missing; retrain the model") from None

    model = await _owned_for_write(uow, runtime, owner, model_id)
    latest = await repo.latest_version(uow.session, model.id)
    if latest is None or latest.version != version.version or _config(model) != _config(current):
        raise Conflict("the model changed while it predicted; try again")
    now = runtime.clock.now()
    forecast["source"] = choice.key
    row = prediction_row(model, version, forecast, features, now)
    uow.session.add(row)
    await uow.session.flush()
    resolved = await _resolve_actuals(uow.session, model, candles, choice.key, now)
    live = await refresh_live(uow.session, model, version, forecast["kind"], now)
    record_audit(
        uow.session,
        ctx,
        "models.predict",
        resource_type="model",
        resource_id=model.id,
        details={"version": version.version, "horizon": row.horizon, "as_of": body.as_of, "resolved": resolved},
    )
    event = ModelPredictionEvent(model_id=model.id, prediction=PredictionOut.model_validate(row), live=live)
    _announce_after_commit(uow, runtime.core.publisher, "model_prediction", model.user_id, event)
    return row, resolved, live


async def list_predictions(
    session: AsyncSession, owner: Principal, model_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[Prediction], int]:
    model = await get_owned(session, owner, model_id)
    return await repo.list_predictions(session, model.id, limit=limit, offset=offset)
