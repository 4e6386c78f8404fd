"""Models on the live feed: actuals from closed live bars, and per-bar predictions of ``live_predict`` models.

:class:`LiveTracker` (started by :class:`~aaiti.ml.service.MLRuntime` when the market runtime runs) subscribes to
the market's :class:`~aaiti.market.feed.CandleBus` and handles each CLOSED candle in order, one at a time:

1. **Actuals.** Every unresolved stored prediction whose target bar is this candle (same symbol, the model's
   timeframe, ``target_time`` == the candle's open time, UTC) gets its actual from the candle's close, with the
   same outcome (:func:`~aaiti.ml.service.outcome_of`) and live-accuracy / drift update
   (:func:`~aaiti.ml.service.refresh_live`) as the predict endpoint; ``outcome.actual_source`` says
   ``live:<feed source>``. After the commit, ``model_live`` (resolved rows and the live summary) goes to
   ``user:{owner}``.
2. **Per-bar predictions.** Each trained model of that symbol and timeframe whose training spec has
   ``live_predict: true`` (``PATCH /api/models/{id} {"live_predict": true}``) forecasts from this bar with its
   latest version, when that version matches the model's configuration. The candles: the model's own series
   (bundled dataset or stored candles, from its ``start_ts``) with open time before this bar, followed by the
   live bars this process has seen for the series (the newest :data:`LIVE_BARS_KEPT`) that are newer than that
   history, up to and including this bar. Live bars carry no volume (0 here), so a model whose features read
   volume cannot be switched to ``live_predict``. Gaps (bars the feed never saw) stay gaps. One prediction per
   model, version and origin bar: a bar seen twice is not predicted twice. The row is stored and announced
   (``model_prediction``) exactly as ``POST /predict`` does, plus ``forecast.live`` (how many live bars the
   input held). At most :data:`MAX_LIVE_MODELS_PER_BAR` models predict per bar.

Model code runs in a thread under the runtime's prediction lock (``MLRuntime.predict_sync``); the event loop only
awaits it. Write transactions are short: candles are loaded and the model runs before the write transaction
opens, which re-checks the model and stores. A failure on one model is logged and does not stop the others or
the loop. The subscription drops its oldest candle when more than :data:`LIVE_QUEUE` wait.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
from sqlalchemy import select

from aaiti.core.tasks.models import Job
from aaiti.ml import repository as repo
from aaiti.ml.artifacts import ArtifactIntegrityError
from aaiti.ml.models import MLModel, Prediction
from aaiti.ml.schemas import ModelLiveEvent, ModelPredictionEvent, PredictionOut
from aaiti.ml.service import (
    _announce_after_commit,
    _choice,
    _config,
    _load_candles,
    _version_matches,
    effective_status,
    outcome_of,
    prediction_row,
    refresh_live,
    uses_volume,
)
from aaiti.ml.tasks import json_safe
from aaiti.trading.candles import Candles

if TYPE_CHECKING:
    from aaiti.market.feed import CandleBus, CandleSubscription, LiveCandle
    from aaiti.ml.service import MLRuntime

log = structlog.get_logger(__name__)

LIVE_BARS_KEPT = 500
"""Closed live bars kept per (symbol, timeframe) for per-bar predictions."""
LIVE_QUEUE = 256
"""Closed candles waiting for the tracker before the oldest is dropped."""
MAX_LIVE_MODELS_PER_BAR = 50
"""``live_predict`` models that predict on one bar (the oldest-created first)."""


def _ms(candle: LiveCandle) -> int:
    return int(candle.open_time.timestamp() * 1000)


class LiveTracker:
    """The ML runtime's consumer of closed live candles (module docstring)."""

    def __init__(self, runtime: MLRuntime, bus: CandleBus) -> None:
        self.runtime = runtime
        self.bus = bus
        self.bars: defaultdict[tuple[str, str], deque[LiveCandle]] = defaultdict(lambda: deque(maxlen=LIVE_BARS_KEPT))
        self.handled = 0
        """Candles handled so far (tests and diagnostics wait on it)."""
        self._sub: CandleSubscription | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sub = self.bus.subscribe(maxsize=LIVE_QUEUE)
        self._task = asyncio.create_task(self._run(), name="ml-live")

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        assert self._sub is not None
        async for candle in self._sub:
            try:
                await self.on_candle(candle)
            except Exception:
                log.exception("ml_live_candle_failed", symbol=candle.symbol, timeframe=candle.timeframe)
            finally:
                self.handled += 1

    async def on_candle(self, candle: LiveCandle) -> tuple[int, int]:
        """Handle one closed candle: returns (predictions resolved, predictions stored)."""
        series = self.bars[(candle.symbol, candle.timeframe)]
        if series and _ms(series[-1]) >= _ms(candle):
            return 0, 0  # a bar seen already, or older than one seen: the feed never goes back
        series.append(candle)
        resolved = await self.resolve(candle)
        stored = 0
        for model_id in await self._live_models(candle):
            try:
                stored += await self.predict_bar(model_id, candle)
            except Exception:
                log.exception("ml_live_predict_failed", model_id=str(model_id), symbol=candle.symbol)
        return resolved, stored

    # ----------------------------------------------------------------------------------------- actuals

    @staticmethod
    def _targeting(candle: LiveCandle) -> Any:
        return (
            select(Prediction, MLModel)
            .join(MLModel, MLModel.id == Prediction.model_id)
            .where(
                Prediction.symbol == candle.symbol,
                Prediction.target_time == candle.open_time,
                Prediction.resolved_at.is_(None),
                MLModel.target_timeframe == candle.timeframe,
            )
            .order_by(Prediction.model_id, Prediction.timestamp)
        )

    async def resolve(self, candle: LiveCandle) -> int:
        """Record the actual of every unresolved prediction whose target bar is ``candle``."""
        db = self.runtime.core.db
        async with db.read() as session:
            # A read first: most bars resolve nothing, and the write transaction takes SQLite's write lock.
            if (await session.execute(self._targeting(candle).limit(1))).first() is None:
                return 0
        now = self.runtime.clock.now()
        resolved = 0
        async with db.unit_of_work() as uow:
            rows = (await uow.session.execute(self._targeting(candle))).all()
            by_model: dict[uuid.UUID, tuple[MLModel, list[Prediction]]] = {}
            for p, model in rows:
                actual, outcome = outcome_of(
                    p.forecast or {}, p.prediction_value, p.lower_value, p.upper_value, candle.close
                )
                outcome["actual_source"] = f"live:{candle.source}"
                p.actual_value = actual
                p.resolved_at = now
                p.outcome = json_safe(outcome)
                by_model.setdefault(model.id, (model, []))[1].append(p)
                resolved += 1
            await uow.session.flush()
            for model, preds in by_model.values():
                version = await repo.latest_version(uow.session, model.id)
                live = None
                if version is not None:
                    kind = str((preds[-1].forecast or {}).get("kind", "value"))
                    live = await refresh_live(uow.session, model, version, kind, now)
                event = ModelLiveEvent(
                    model_id=model.id, resolved=[PredictionOut.model_validate(p) for p in preds], live=live
                )
                _announce_after_commit(uow, self.runtime.core.publisher, "model_live", model.user_id, event)
            await uow.commit()
        return resolved

    # ----------------------------------------------------------------------------------------- per-bar

    async def _live_models(self, candle: LiveCandle) -> list[uuid.UUID]:
        async with self.runtime.core.db.read() as session:
            rows = await session.scalars(
                select(MLModel)
                .where(MLModel.target_timeframe == candle.timeframe, MLModel.training_status != "untrained")
                .order_by(MLModel.created_at, MLModel.id)
            )
            # symbols and training_spec are JSON columns: filtered here, portably, rather than in SQL.
            wanted = [
                m.id
                for m in rows.all()
                if list(m.symbols or [])[:1] == [candle.symbol] and (m.training_spec or {}).get("live_predict")
            ]
        return wanted[:MAX_LIVE_MODELS_PER_BAR]

    def _input(self, stored: Candles, candle: LiveCandle) -> tuple[Candles, int]:
        """The model's history before ``candle`` followed by the newer live bars up to ``candle``."""
        origin = _ms(candle)
        history = stored.slice(0, int(np.searchsorted(stored.ts, origin, side="left")))
        after = int(history.ts[-1]) if len(history) else -1
        live = [c for c in self.bars[(candle.symbol, candle.timeframe)] if after < _ms(c) <= origin]
        if not live or _ms(live[-1]) != origin:
            live.append(candle)
        candles = Candles.from_arrays(
            np.concatenate([history.ts, [_ms(c) for c in live]]),
            np.concatenate([history.open, [c.open for c in live]]),
            np.concatenate([history.high, [c.high for c in live]]),
            np.concatenate([history.low, [c.low for c in live]]),
            np.concatenate([history.close, [c.close for c in live]]),
            np.concatenate([history.volume, np.zeros(len(live))]),
        )
        return candles, len(live)

    @staticmethod
    async def _predicted(session: Any, model_id: uuid.UUID, version: int, candle: LiveCandle) -> bool:
        found = await session.scalar(
            select(Prediction.id)
            .where(
                Prediction.model_id == model_id,
                Prediction.version == version,
                Prediction.origin_time == candle.open_time,
            )
            .limit(1)
        )
        return found is not None

    async def predict_bar(self, model_id: uuid.UUID, candle: LiveCandle) -> int:
        """Forecast from ``candle`` with the model's latest version and store it; returns 1 if stored."""
        runtime = self.runtime
        async with runtime.core.db.read() as session:
            model = await session.get(MLModel, model_id)
            if model is None or not (model.training_spec or {}).get("live_predict"):
                return 0
            job = await session.get(Job, model.training_job_id) if model.training_job_id else None
            version = await repo.latest_version(session, model.id)
            if (
                effective_status(model, job)[0] == "untrained"
                or version is None
                or not _version_matches(model, version)
                or uses_volume(model.training_spec)
                or await self._predicted(session, model.id, version.version, candle)
            ):
                return 0
            snapshot = _config(model)
            choice = _choice(model)
            stored = await _load_candles(
                session, choice, start_ts=(model.training_spec or {}).get("start_ts"), end_ts=_ms(candle) - 1
            )
        candles, n_live = self._input(stored, candle)
        if int(candles.ts[-1]) <= int(version.training_window["end_ts"]):
            return 0  # the bar lies inside the fitted window: no look into the data the model saw
        try:
            forecast, features = await asyncio.to_thread(runtime.predict_sync, version, candles, None)
        except (ArtifactIntegrityError, FileNotFoundError) as exc:
            log.error("ml_live_artifact_unusable", model_id=str(model_id), version=version.version, error=str(exc))
            return 0
        async with runtime.core.db.unit_of_work() as uow:
            model = await repo.get_model(uow.session, model.user_id, model_id, for_update=True)
            latest = await repo.latest_version(uow.session, model_id) if model is not None else None
            if (
                model is None
                or latest is None
                or latest.version != version.version
                or _config(model) != snapshot
                or await self._predicted(uow.session, model_id, version.version, candle)
            ):
                return 0
            now = runtime.clock.now()
            forecast["source"] = choice.key
            forecast["live"] = {"live_bars": n_live, "feed_source": candle.source, "samples": candle.samples}
            row = prediction_row(model, version, forecast, features, now)
            uow.session.add(row)
            await uow.session.flush()
            live = await refresh_live(uow.session, model, version, forecast["kind"], now)
            event = ModelPredictionEvent(model_id=model.id, prediction=PredictionOut.model_validate(row), live=live)
            _announce_after_commit(uow, runtime.core.publisher, "model_prediction", model.user_id, event)
            await uow.commit()
        return 1
