"""scikit-learn regressors and direction classifiers on the feature row of the origin bar.

Scalers live inside the fitted pipelines, so they are fitted on the training rows only and saved with the
model. Models are persisted with joblib (a pickle): the artefact layer verifies the file's SHA-256 against
the hash recorded at write time before anything is unpickled.

Random forest and histogram gradient boosting grow in chunks (``warm_start``) so a job can report progress
and be cancelled between chunks; the result equals a single fit with the same seed.
"""

from __future__ import annotations

import io
from typing import Any, ClassVar

import joblib  # type: ignore[import-untyped]
import numpy as np

from aaiti.ml.estimators.base import FitContext, FitFailed, FloatArray, IntArray, TrainingData
from aaiti.ml.estimators.params import (
    GaussianNbParams,
    HistGradientBoostingParams,
    KnnParams,
    LinearParams,
    LogisticParams,
    PolynomialRidgeParams,
    RandomForestParams,
    SvrParams,
)
from aaiti.ml.estimators.supervised import SupervisedForecaster

_BLOB = "model.joblib"


class _Sklearn(SupervisedForecaster):
    """One estimator per forecast step unless the estimator is natively multi-output."""

    multi_output: ClassVar[bool] = True

    def __init__(self, params: Any, *, horizon: int, level: float, seed: int = 0) -> None:
        super().__init__(params, horizon=horizon, level=level, seed=seed)
        self.estimators: list[Any] = []

    def _make(self) -> Any:
        raise NotImplementedError

    def _fit_one(self, est: Any, x: FloatArray, y: FloatArray, ctx: FitContext) -> Any:
        return est.fit(x, y)

    def _fit_model(
        self,
        data: TrainingData,
        fit_rows: IntArray,
        y_fit: FloatArray,
        val_rows: IntArray,
        y_val: FloatArray,
        ctx: FitContext,
    ) -> None:
        x = data.features[fit_rows]
        if self.multi_output and self.kind == "value":
            ctx.progress(0.0, f"fitting {self.algorithm} on {len(fit_rows)} rows")
            target = y_fit if self._horizon > 1 else y_fit[:, 0]
            self.estimators = [self._fit_one(self._make(), x, target, ctx)]
        else:
            self.estimators = []
            for k in range(self._horizon):
                ctx.checkpoint()
                ctx.progress(k / self._horizon, f"fitting {self.algorithm} for step {k + 1}/{self._horizon}")
                target = y_fit[:, k]
                if self.kind == "direction" and len(np.unique(target)) < 2:
                    raise FitFailed("the training window moves in only one direction; nothing to classify")
                self.estimators.append(
                    self._fit_one(self._make(), x, target, ctx.sub(k / self._horizon, (k + 1) / self._horizon))
                )
        ctx.progress(1.0, "fitted")

    def _predict_rows(self, data: TrainingData, rows: IntArray) -> FloatArray:
        x = data.features[rows]
        if self.kind == "direction":
            cols = []
            for est in self.estimators:
                up = list(est.classes_).index(1.0)
                cols.append(est.predict_proba(x)[:, up])
            return np.column_stack(cols)
        if self.multi_output:
            out = np.asarray(self.estimators[0].predict(x), dtype=np.float64)
            return out.reshape(len(rows), self._horizon)
        return np.column_stack([est.predict(x) for est in self.estimators]).astype(np.float64)

    def _save_model(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        import sklearn

        buf = io.BytesIO()
        joblib.dump(self.estimators, buf)
        return {"sklearn": sklearn.__version__, "n_estimators": len(self.estimators)}, {_BLOB: buf.getvalue()}

    def _load_model(self, meta: dict[str, Any], blobs: dict[str, bytes]) -> None:
        # Safe only because the bundle's SHA-256 was verified against the server's record (artifacts.py).
        self.estimators = list(joblib.load(io.BytesIO(blobs[_BLOB])))
        if len(self.estimators) != int(meta["n_estimators"]):
            raise FitFailed("artefact holds the wrong number of estimators")


def _scaled(est: Any) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), est)


class LinearForecaster(_Sklearn):
    algorithm = "linear"
    params_model = LinearParams

    def _make(self) -> Any:
        from sklearn.linear_model import LinearRegression

        return _scaled(LinearRegression())


class PolynomialRidgeForecaster(_Sklearn):
    algorithm = "polynomial_ridge"
    params_model = PolynomialRidgeParams
    params: PolynomialRidgeParams

    def _make(self) -> Any:
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import PolynomialFeatures, StandardScaler

        return make_pipeline(
            StandardScaler(),
            PolynomialFeatures(degree=self.params.degree, include_bias=False),
            StandardScaler(),
            Ridge(alpha=self.params.alpha),
        )


class RandomForestForecaster(_Sklearn):
    algorithm = "random_forest"
    params_model = RandomForestParams
    params: RandomForestParams
    _chunk = 10

    def _make(self) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        p = self.params
        return RandomForestRegressor(
            n_estimators=p.n_estimators,
            max_depth=p.max_depth,
            min_samples_leaf=p.min_samples_leaf,
            max_features=p.max_features,
            random_state=self.seed,
            n_jobs=1,
        )

    def _fit_one(self, est: Any, x: FloatArray, y: FloatArray, ctx: FitContext) -> Any:
        total = self.params.n_estimators
        est.set_params(warm_start=True)
        grown = 0
        while grown < total:
            ctx.checkpoint()
            grown = min(total, grown + self._chunk)
            est.set_params(n_estimators=grown)
            est.fit(x, y)
            ctx.progress(grown / total, f"random forest: {grown}/{total} trees")
        est.set_params(warm_start=False)
        return est


class HistGradientBoostingForecaster(_Sklearn):
    algorithm = "hist_gradient_boosting"
    params_model = HistGradientBoostingParams
    params: HistGradientBoostingParams
    multi_output = False
    _chunk = 25

    def _make(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingRegressor

        p = self.params
        return HistGradientBoostingRegressor(
            max_iter=p.max_iter,
            learning_rate=p.learning_rate,
            max_depth=p.max_depth,
            max_leaf_nodes=p.max_leaf_nodes,
            min_samples_leaf=p.min_samples_leaf,
            l2_regularization=p.l2_regularization,
            early_stopping=False,
            random_state=self.seed,
        )

    def _fit_one(self, est: Any, x: FloatArray, y: FloatArray, ctx: FitContext) -> Any:
        total = self.params.max_iter
        est.set_params(warm_start=True)
        done = 0
        while done < total:
            ctx.checkpoint()
            done = min(total, done + self._chunk)
            est.set_params(max_iter=done)
            est.fit(x, y)
            ctx.progress(done / total, f"gradient boosting: {done}/{total} iterations")
        est.set_params(warm_start=False)
        return est


class SvrForecaster(_Sklearn):
    algorithm = "svr"
    params_model = SvrParams
    params: SvrParams
    multi_output = False

    def _make(self) -> Any:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR

        p = self.params
        # epsilon is in standardised target units, so one default suits any volatility.
        return TransformedTargetRegressor(
            regressor=_scaled(SVR(kernel=p.kernel, C=p.C, epsilon=p.epsilon, gamma=p.gamma)),
            transformer=StandardScaler(),
        )


class KnnForecaster(_Sklearn):
    algorithm = "knn"
    params_model = KnnParams
    params: KnnParams

    def _make(self) -> Any:
        from sklearn.neighbors import KNeighborsRegressor

        return _scaled(KNeighborsRegressor(n_neighbors=self.params.n_neighbors, weights=self.params.weights))


class LogisticForecaster(_Sklearn):
    algorithm = "logistic_regression"
    params_model = LogisticParams
    params: LogisticParams
    kind = "direction"
    multi_output = False

    def _make(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return _scaled(LogisticRegression(C=self.params.C, max_iter=self.params.max_iter, random_state=self.seed))


class GaussianNbForecaster(_Sklearn):
    algorithm = "gaussian_nb"
    params_model = GaussianNbParams
    params: GaussianNbParams
    kind = "direction"
    multi_output = False

    def _make(self) -> Any:
        from sklearn.naive_bayes import GaussianNB

        return _scaled(GaussianNB(var_smoothing=self.params.var_smoothing))
