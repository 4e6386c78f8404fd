"""A reinforcement-learning trader: tabular Q-learning over discretised indicator states.

State: each feature in ``state_features`` cut into ``bins`` quantile bins (edges fitted on the training
window), combined with the position currently held. Actions: the position to hold over the next bar
(flat / long, and short when allowed). Reward: ``position * (close[t + 1] / close[t] - 1)`` minus
``fee_bps`` per unit of position change. Learning: epsilon-greedy Q-learning, several passes (episodes)
over the training window only, seeded.

Its "forecast" is a position: ``policy(features)`` rolls the greedy policy over a sequence of feature rows
and returns the positions; scoring evaluates that position sequence as a trading policy (P&L net of fees
against buy-and-hold) on the held-out tail. Unvisited states keep Q = 0, where the tie-break is "flat".
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from aaiti.core.errors import Invalid
from aaiti.ml.estimators.base import (
    ArtifactPayload,
    FitContext,
    FitFailed,
    FloatArray,
    Forecast,
    ForecastKind,
    IntArray,
    OriginForecasts,
    TrainingData,
)
from aaiti.ml.estimators.params import QLearningParams

_TABLE = "q_table.safetensors"


class QLearningTrader:
    kind: ClassVar[ForecastKind] = "position"
    algorithm: ClassVar[str] = "q_learning"
    params_model = QLearningParams

    def __init__(self, params: QLearningParams, *, horizon: int, level: float, seed: int = 0) -> None:
        if horizon != 1:
            raise Invalid("the reinforcement-learning trader decides one bar at a time; use horizon 1")
        self.params = params
        self._horizon = 1
        self.level = level
        self.seed = seed
        self.actions = np.array([0.0, 1.0, -1.0] if params.allow_short else [0.0, 1.0])
        self.edges: list[list[float]] = []
        self.columns: list[int] = []
        self.feature_names: tuple[str, ...] = ()
        self.q = np.zeros((0, len(self.actions)))
        self.fit_info: dict[str, Any] = {}
        self._train: TrainingData | None = None

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def fee(self) -> float:
        return self.params.fee_bps / 1e4

    def _bins_of(self, features: FloatArray) -> IntArray:
        """Combined feature-bin index per row (without the position)."""
        idx = np.zeros(len(features), dtype=np.int64)
        for col, edges in zip(self.columns, self.edges, strict=True):
            idx = idx * self.params.bins + np.searchsorted(np.asarray(edges), features[:, col], side="right")
        return idx

    def _state(self, feature_bin: int, pos_index: int) -> int:
        return feature_bin * len(self.actions) + pos_index

    def _resolve_columns(self, data: TrainingData) -> list[int]:
        missing = [f for f in self.params.state_features if f not in data.feature_names]
        if missing:
            raise Invalid(
                f"state features {missing} are not produced by the feature config (available: "
                f"{', '.join(data.feature_names)})"
            )
        return [data.feature_names.index(f) for f in self.params.state_features]

    def fit(self, train: TrainingData, ctx: FitContext | None = None) -> Self:
        ctx = ctx or FitContext()
        p = self.params
        self.columns = self._resolve_columns(train)
        self.feature_names = train.feature_names
        rows = np.arange(train.first_valid, len(train) - 1, dtype=np.int64)
        if len(rows) < 20:
            raise Invalid("Q-learning needs more training bars after the warm-up")
        x = train.features[rows]
        qs = np.linspace(0, 1, p.bins + 1)[1:-1]
        self.edges = [[float(v) for v in np.quantile(x[:, c], qs)] for c in self.columns]
        bins = self._bins_of(train.features[rows[0] : rows[-1] + 2])
        close = train.candles.close
        ret = close[rows + 1] / close[rows] - 1.0
        n_act = len(self.actions)
        self.q = np.zeros((p.bins ** len(self.columns) * n_act, n_act))
        q = self.q
        rng = np.random.default_rng(self.seed)
        actions = self.actions
        fee = self.fee
        eps = p.epsilon
        episode_returns: list[float] = []
        for ep in range(p.episodes):
            ctx.checkpoint()
            pos_i = 0
            explore = rng.random(len(rows)) < eps
            random_a = rng.integers(0, n_act, len(rows))
            total = 0.0
            for i in range(len(rows)):
                s = bins[i] * n_act + pos_i
                a = int(random_a[i]) if explore[i] else int(np.argmax(q[s]))
                reward = actions[a] * ret[i] - fee * abs(actions[a] - actions[pos_i])
                s_next = bins[i + 1] * n_act + a
                q[s, a] += p.alpha * (reward + p.gamma * q[s_next].max() - q[s, a])
                pos_i = a
                total += reward
            episode_returns.append(total)
            eps *= p.epsilon_decay
            ctx.progress((ep + 1) / p.episodes, f"episode {ep + 1}/{p.episodes}: reward {total:.4f}")
        visited = int(np.count_nonzero(np.any(q != 0, axis=1)))
        self.fit_info = {
            "episodes": p.episodes,
            "episode_reward": episode_returns,
            "states_visited": visited,
            "states_total": int(q.shape[0]),
        }
        self._train = train
        return self

    def policy(self, features: FloatArray, start_position: float = 0.0) -> FloatArray:
        """Greedy positions for consecutive feature rows (each held over the bar after its row)."""
        if self.q.size == 0:
            raise FitFailed("model is not fitted")
        if not np.all(np.isfinite(features[:, self.columns])):
            raise Invalid("state features are undefined (indicator warm-up) for some rows")
        bins = self._bins_of(features)
        matches = np.flatnonzero(self.actions == start_position)
        if len(matches) == 0:
            raise Invalid(f"start position {start_position} is not an action of this policy")
        pos_i = int(matches[0])
        out = np.empty(len(features))
        for i, b in enumerate(bins):
            pos_i = int(np.argmax(self.q[b * len(self.actions) + pos_i]))
            out[i] = self.actions[pos_i]
        return out

    def _data(self, context: TrainingData | None) -> TrainingData:
        data = context if context is not None else self._train
        if data is None:
            raise Invalid("a loaded model needs the recent candles as context to decide")
        if self.feature_names and data.feature_names != self.feature_names:
            raise Invalid("the candles' features do not match the ones the model was trained on")
        return data

    def predict(self, horizon: int, context: TrainingData | None = None) -> Forecast:
        if horizon != 1:
            raise Invalid("the reinforcement-learning trader decides one bar at a time (horizon 1)")
        data = self._data(context)
        # The held position is part of the state, so the decision at the last bar replays the policy from
        # the first bar with defined features.
        positions = self.policy(data.features[data.first_valid :])
        return Forecast(kind="position", steps=np.array([1], dtype=np.int64), level=self.level, position=positions[-1:])

    def predict_origins(self, data: TrainingData, origins: IntArray) -> OriginForecasts:
        data = self._data(data)
        start, stop = int(origins[0]), int(origins[-1]) + 1
        positions = self.policy(data.features[start:stop])
        return OriginForecasts(
            kind="position", origins=origins, horizon=1, level=self.level, position=positions[origins - start]
        )

    def save(self) -> ArtifactPayload:
        if self.q.size == 0:
            raise FitFailed("model is not fitted")
        meta = {
            "horizon": 1,
            "level": self.level,
            "seed": self.seed,
            "params": self.params.model_dump(mode="json"),
            "edges": self.edges,
            "columns": self.columns,
            "feature_names": list(self.feature_names),
            "fit_info": self.fit_info,
        }
        return ArtifactPayload(meta=meta, blobs={_TABLE: st_save({"q": np.ascontiguousarray(self.q)})})

    @classmethod
    def load(cls, payload: ArtifactPayload) -> Self:
        meta = payload.meta
        obj = cls(
            QLearningParams.model_validate(meta["params"]),
            horizon=1,
            level=float(meta["level"]),
            seed=int(meta["seed"]),
        )
        obj.edges = [[float(v) for v in e] for e in meta["edges"]]
        obj.columns = [int(c) for c in meta["columns"]]
        obj.feature_names = tuple(meta["feature_names"])
        obj.fit_info = dict(meta.get("fit_info", {}))
        obj.q = st_load(payload.blobs[_TABLE])["q"]
        expected = (obj.params.bins ** len(obj.columns) * len(obj.actions), len(obj.actions))
        if obj.q.shape != expected:
            raise FitFailed("artefact Q table has the wrong shape")
        return obj
