"""torch forecasters: LSTM and GRU (sequence models trained by backpropagation through time) and a dense
network on the origin's feature row.

- Inputs are the feature rows (lagged returns and indicators), standardised with a mean and standard
  deviation computed on the *fit* rows only; targets are the h-step log returns, standardised the same way.
  Both scalers are saved with the weights.
- Training: AdamW on mean squared error, shuffled mini-batches, gradient-norm clipping at 1.0, early
  stopping on the held-out validation tail (best weights restored).
- Determinism: ``torch.manual_seed(seed)``, a seeded generator for shuffling, and deterministic kernels
  (``torch.use_deterministic_algorithms`` while fitting; on CUDA with ``CUBLAS_WORKSPACE_CONFIG`` set).
  The same seed and data give bit-identical weights on the same device type.
- Device: CUDA when ``device="auto"`` and ``torch.cuda.is_available()``, else CPU; weights are saved on the
  CPU so an artefact trained on a GPU loads anywhere.
- Persistence: ``safetensors`` state_dict (no pickle) plus JSON metadata (architecture, scalers, history).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from aaiti.core.errors import Invalid
from aaiti.ml.estimators.base import FitContext, FitFailed, FloatArray, IntArray, TrainingData
from aaiti.ml.estimators.params import DenseParams, RecurrentParams, TorchParams
from aaiti.ml.estimators.supervised import SupervisedForecaster

_WEIGHTS = "weights.safetensors"
_PREDICT_BATCH = 4096


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise Invalid("device 'cuda' was requested but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


@contextmanager
def deterministic(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch and enable deterministic kernels for the duration of a fit."""
    if device.type == "cuda":
        # cuBLAS needs this before its first use to run deterministically (a fresh worker process).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = torch.are_deterministic_algorithms_enabled()
    prev_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev_cudnn


class RecurrentNet(nn.Module):
    """(batch, sequence, features) -> (batch, h): the last step's hidden state through a linear head."""

    def __init__(self, cell: str, n_features: int, hidden: int, layers: int, dropout: float, outputs: int) -> None:
        super().__init__()
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            n_features, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        last: torch.Tensor = self.head(self.drop(out[:, -1, :]))
        return last


class DenseNet(nn.Module):
    def __init__(self, n_features: int, hidden: list[int], dropout: float, outputs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class _TorchForecaster(SupervisedForecaster):
    params: TorchParams

    def __init__(self, params: Any, *, horizon: int, level: float, seed: int = 0) -> None:
        super().__init__(params, horizon=horizon, level=level, seed=seed)
        self.net: nn.Module | None = None
        self.device = torch.device("cpu")
        self.x_mean: FloatArray = np.zeros(0)
        self.x_std: FloatArray = np.ones(0)
        self.y_mean: FloatArray = np.zeros(0)
        self.y_std: FloatArray = np.ones(0)
        self.epoch_seconds: list[float] = []

    def _build(self, n_features: int) -> nn.Module:
        raise NotImplementedError

    def _arch(self) -> dict[str, Any]:
        raise NotImplementedError

    def _scaled_features(self, data: TrainingData) -> torch.Tensor:
        x = (data.features - self.x_mean) / self.x_std
        x = np.nan_to_num(x, nan=0.0)  # warm-up rows are never read (rows start after the history)
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    def _inputs(self, feats: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        history = self._history()
        if history == 1:
            return feats[rows]
        offsets = torch.arange(-history + 1, 1, device=feats.device)
        return feats[rows[:, None] + offsets[None, :]]

    def _fit_model(
        self,
        data: TrainingData,
        fit_rows: IntArray,
        y_fit: FloatArray,
        val_rows: IntArray,
        y_val: FloatArray,
        ctx: FitContext,
    ) -> None:
        p = self.params
        self.device = resolve_device(p.device)
        history = self._history()
        span = data.features[int(fit_rows[0]) - history + 1 : int(fit_rows[-1]) + 1]
        self.x_mean = span.mean(axis=0)
        sd = span.std(axis=0)
        self.x_std = np.where(sd > 0, sd, 1.0)
        self.y_mean = y_fit.mean(axis=0)
        ysd = y_fit.std(axis=0)
        self.y_std = np.where(ysd > 0, ysd, 1.0)
        with deterministic(self.seed, self.device):
            self._train_loop(data, fit_rows, y_fit, val_rows, y_val, ctx)

    def _train_loop(
        self,
        data: TrainingData,
        fit_rows: IntArray,
        y_fit: FloatArray,
        val_rows: IntArray,
        y_val: FloatArray,
        ctx: FitContext,
    ) -> None:
        p = self.params
        dev = self.device
        feats = self._scaled_features(data)
        tr_rows = torch.as_tensor(fit_rows, device=dev)
        va_rows = torch.as_tensor(val_rows, device=dev)
        tr_y = torch.as_tensor((y_fit - self.y_mean) / self.y_std, dtype=torch.float32, device=dev)
        va_y = torch.as_tensor((y_val - self.y_mean) / self.y_std, dtype=torch.float32, device=dev)
        net = self._build(data.features.shape[1]).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
        loss_fn = nn.MSELoss()
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        n = len(fit_rows)
        best = float("inf")
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch = 0
        bad = 0
        train_hist: list[float] = []
        val_hist: list[float] = []
        epoch_s: list[float] = []
        for epoch in range(1, p.epochs + 1):
            ctx.checkpoint()
            start = time.perf_counter()
            net.train()
            perm = torch.randperm(n, generator=gen).to(dev)
            total = torch.zeros((), device=dev)
            for i in range(0, n, p.batch_size):
                idx = perm[i : i + p.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(self._inputs(feats, tr_rows[idx])), tr_y[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                total += loss.detach() * len(idx)
            net.eval()
            with torch.no_grad():
                val_loss = float(loss_fn(net(self._inputs(feats, va_rows)), va_y))
            train_loss = float(total) / n
            epoch_s.append(time.perf_counter() - start)
            if not np.isfinite(train_loss) or not np.isfinite(val_loss):
                raise FitFailed(f"training diverged at epoch {epoch} (loss is not finite)")
            train_hist.append(train_loss)
            val_hist.append(val_loss)
            if val_loss < best:
                best, best_epoch, bad = val_loss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                bad += 1
            ctx.progress(epoch / p.epochs, f"epoch {epoch}/{p.epochs}: loss {train_loss:.4f}, val {val_loss:.4f}")
            if bad >= p.patience:
                break
        assert best_state is not None
        net.load_state_dict(best_state)
        net.eval()
        self.net = net
        self.fit_info = {
            "device": dev.type,
            "epochs_run": len(train_hist),
            "best_epoch": best_epoch,
            "stopped_early": len(train_hist) < p.epochs,
            "train_loss": train_hist,
            "val_loss": val_hist,
        }
        # Wall-clock times vary run to run, so they stay out of fit_info (which is saved in the artefact).
        self.epoch_seconds = epoch_s

    def _predict_rows(self, data: TrainingData, rows: IntArray) -> FloatArray:
        if self.net is None:
            raise FitFailed("model is not fitted")
        feats = self._scaled_features(data)
        idx = torch.as_tensor(rows, device=self.device)
        outs = []
        self.net.eval()
        with torch.no_grad():
            for i in range(0, len(rows), _PREDICT_BATCH):
                outs.append(self.net(self._inputs(feats, idx[i : i + _PREDICT_BATCH])).cpu().numpy())
        z = np.concatenate(outs, axis=0).astype(np.float64) if outs else np.zeros((0, self._horizon))
        return np.asarray(z * self.y_std + self.y_mean, dtype=np.float64)

    def _save_model(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        if self.net is None:
            raise FitFailed("model is not fitted")
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.net.state_dict().items()}
        scalers = {
            "x_mean": self.x_mean.tolist(),
            "x_std": self.x_std.tolist(),
            "y_mean": self.y_mean.tolist(),
            "y_std": self.y_std.tolist(),
        }
        meta = {"arch": self._arch(), "scalers": scalers, "torch": torch.__version__, "trained_on": self.device.type}
        return meta, {_WEIGHTS: st_save(state, metadata={"algorithm": self.algorithm})}

    def _load_model(self, meta: dict[str, Any], blobs: dict[str, bytes]) -> None:
        sc = meta["scalers"]
        self.x_mean = np.asarray(sc["x_mean"], dtype=np.float64)
        self.x_std = np.asarray(sc["x_std"], dtype=np.float64)
        self.y_mean = np.asarray(sc["y_mean"], dtype=np.float64)
        self.y_std = np.asarray(sc["y_std"], dtype=np.float64)
        self.device = resolve_device(self.params.device)
        net = self._build(len(self.x_mean))
        net.load_state_dict(st_load(blobs[_WEIGHTS]))
        self.net = net.to(self.device).eval()


class _Recurrent(_TorchForecaster):
    cell: ClassVar[str]
    params_model = RecurrentParams
    params: RecurrentParams

    def _history(self) -> int:
        return self.params.sequence_length

    def _build(self, n_features: int) -> nn.Module:
        p = self.params
        return RecurrentNet(self.cell, n_features, p.hidden_size, p.num_layers, p.dropout, self._horizon)

    def _arch(self) -> dict[str, Any]:
        p = self.params
        return {
            "cell": self.cell,
            "hidden_size": p.hidden_size,
            "num_layers": p.num_layers,
            "sequence_length": p.sequence_length,
        }


class LstmForecaster(_Recurrent):
    algorithm = "lstm"
    cell = "lstm"


class GruForecaster(_Recurrent):
    algorithm = "gru"
    cell = "gru"


class DenseForecaster(_TorchForecaster):
    algorithm = "dense_nn"
    params_model = DenseParams
    params: DenseParams

    def _build(self, n_features: int) -> nn.Module:
        return DenseNet(n_features, list(self.params.hidden_layers), self.params.dropout, self._horizon)

    def _arch(self) -> dict[str, Any]:
        return {"hidden_layers": list(self.params.hidden_layers)}
