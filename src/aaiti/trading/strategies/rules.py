"""The composable rule strategy: entry and exit rules over registered indicators, built as JSON without code.

Example (an SMA crossover with an RSI filter)::

    {
      "entry_long": {"all": [
        {"left": {"indicator": "sma", "params": {"period": 10}},
         "op": "crosses_above",
         "right": {"indicator": "sma", "params": {"period": 30}}},
        {"left": {"indicator": "rsi", "params": {"period": 14}}, "op": "<", "right": 70}
      ]},
      "exit_long": {"left": {"price": "close"}, "op": "<", "right": {"indicator": "sma", "params": {"period": 30}}}
    }

Operands are a number, ``{"price": "close"}`` (or open/high/low/volume/hl2/hlc3/ohlc4) or
``{"indicator": NAME, "params": {...}, "output": "value"}`` with any indicator of
:data:`aaiti.trading.indicators.INDICATORS`. Operators: ``>``, ``>=``, ``<``, ``<=``, ``crosses_above``
(``left > right`` now and ``left <= right`` on the previous bar), ``crosses_below``. Rules combine with
``{"all": [...]}``, ``{"any": [...]}`` and ``{"not": rule}``.

Warm-up: a condition is *unknown* on a bar where one of its operands is NaN (or, for crosses, was NaN on the
previous bar). An unknown condition is false, and so is its negation, so nothing fires before every indicator
it reads is defined. Entries and exits drive the same state machine as the other strategies
(:func:`aaiti.trading.strategies.base.state_machine_step`).

The incremental form keeps the bars it has seen and re-evaluates the rules on that history at each bar, which is
exact (every indicator is causal and computed forward from the first bar) but costs O(history) per bar.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from aaiti.trading.candles import Candles, FloatArray
from aaiti.trading.indicators import INDICATORS, compute_indicator, source_series, validate_indicator_params
from aaiti.trading.strategies.base import (
    Strategy,
    StrategyParams,
    StrategyStream,
    state_machine_step,
    state_machine_targets,
)

MAX_CONDITIONS = 32
MAX_DEPTH = 6


class PriceOperand(StrategyParams):
    price: Literal["open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4"]


class IndicatorOperand(StrategyParams):
    indicator: str
    params: dict[str, Any] = Field(default_factory=dict)
    output: str = "value"

    @model_validator(mode="after")
    def _known(self) -> IndicatorOperand:
        model = validate_indicator_params(self.indicator, self.params)
        spec = INDICATORS[self.indicator]
        if self.output not in spec.outputs:
            raise ValueError(f"indicator {self.indicator!r} has outputs {list(spec.outputs)}, not {self.output!r}")
        # Store the normalised parameters (defaults filled in) so equal rules hash and fingerprint equally.
        object.__setattr__(self, "params", model.model_dump(mode="json"))
        return self

    def key(self) -> str:
        return json.dumps([self.indicator, self.params], sort_keys=True)

    def lookback(self) -> int:
        spec = INDICATORS[self.indicator]
        return spec.lookback(spec.params_model.model_validate(self.params))


Operand = Annotated[float | PriceOperand | IndicatorOperand, Field(union_mode="left_to_right")]


class Condition(StrategyParams):
    left: Operand
    op: Literal[">", ">=", "<", "<=", "crosses_above", "crosses_below"]
    right: Operand

    @field_validator("left", "right", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("operands are numbers, prices or indicators, not booleans")
        return v


class AllOf(StrategyParams):
    all: list[Rule] = Field(min_length=1, max_length=MAX_CONDITIONS)


class AnyOf(StrategyParams):
    any: list[Rule] = Field(min_length=1, max_length=MAX_CONDITIONS)


class NotRule(StrategyParams):
    not_: Rule = Field(alias="not")


Rule = Annotated[Condition | AllOf | AnyOf | NotRule, Field(union_mode="left_to_right")]

AllOf.model_rebuild()
AnyOf.model_rebuild()
NotRule.model_rebuild()


def _walk(rule: Rule, depth: int = 1) -> tuple[int, int]:
    """(number of conditions, depth)."""
    if isinstance(rule, Condition):
        return 1, depth
    children: list[Rule]
    if isinstance(rule, AllOf):
        children = rule.all
    elif isinstance(rule, AnyOf):
        children = rule.any
    else:
        children = [rule.not_]
    count = 0
    deepest = depth
    for child in children:
        c, d = _walk(child, depth + 1)
        count += c
        deepest = max(deepest, d)
    return count, deepest


def _operands(rule: Rule) -> list[Any]:
    if isinstance(rule, Condition):
        return [rule.left, rule.right]
    if isinstance(rule, AllOf):
        return [o for r in rule.all for o in _operands(r)]
    if isinstance(rule, AnyOf):
        return [o for r in rule.any for o in _operands(r)]
    return _operands(rule.not_)


def _has_cross(rule: Rule) -> bool:
    if isinstance(rule, Condition):
        return rule.op.startswith("crosses")
    if isinstance(rule, AllOf):
        return any(_has_cross(r) for r in rule.all)
    if isinstance(rule, AnyOf):
        return any(_has_cross(r) for r in rule.any)
    return _has_cross(rule.not_)


class RulesParams(StrategyParams):
    model_config = StrategyParams.model_config | {"populate_by_name": True}

    entry_long: Rule | None = None
    exit_long: Rule | None = None
    entry_short: Rule | None = None
    exit_short: Rule | None = None

    @model_validator(mode="after")
    def _bounded(self) -> RulesParams:
        if self.entry_long is None and self.entry_short is None:
            raise ValueError("at least one of entry_long or entry_short is required")
        total = 0
        for rule in self._rules():
            count, depth = _walk(rule)
            total += count
            if depth > MAX_DEPTH:
                raise ValueError(f"rules may nest at most {MAX_DEPTH} levels")
        if total > MAX_CONDITIONS:
            raise ValueError(f"at most {MAX_CONDITIONS} conditions in total")
        return self

    def _rules(self) -> list[Rule]:
        return [r for r in (self.entry_long, self.exit_long, self.entry_short, self.exit_short) if r is not None]


class _Evaluator:
    """Evaluates rules on whole arrays with three-valued logic (value, known)."""

    def __init__(self, candles: Candles) -> None:
        self.candles = candles
        self.cache: dict[str, dict[str, FloatArray]] = {}
        self.n = len(candles)

    def operand(self, op: float | PriceOperand | IndicatorOperand) -> FloatArray:
        if isinstance(op, PriceOperand):
            return source_series(self.candles, op.price)
        if isinstance(op, IndicatorOperand):
            key = op.key()
            if key not in self.cache:
                self.cache[key] = compute_indicator(op.indicator, self.candles, op.params)
            return self.cache[key][op.output]
        return np.full(self.n, float(op), dtype=np.float64)

    def rule(self, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(rule, Condition):
            a = self.operand(rule.left)
            b = self.operand(rule.right)
            known = np.isfinite(a) & np.isfinite(b)
            if rule.op == ">":
                value = a > b
            elif rule.op == ">=":
                value = a >= b
            elif rule.op == "<":
                value = a < b
            elif rule.op == "<=":
                value = a <= b
            else:
                prev_known = np.zeros(self.n, dtype=bool)
                prev_known[1:] = known[:-1]
                pa = np.empty_like(a)
                pb = np.empty_like(b)
                if self.n:
                    pa[0] = np.nan
                    pb[0] = np.nan
                pa[1:] = a[:-1]
                pb[1:] = b[:-1]
                known = known & prev_known
                up = rule.op == "crosses_above"
                value = (a > b) & (pa <= pb) if up else (a < b) & (pa >= pb)
            return value & known, known
        if isinstance(rule, NotRule):
            v, k = self.rule(rule.not_)
            return ~v & k, k
        children = rule.all if isinstance(rule, AllOf) else rule.any
        parts = [self.rule(r) for r in children]
        known = np.logical_and.reduce([k for _, k in parts])
        if isinstance(rule, AllOf):
            value = np.logical_and.reduce([v for v, _ in parts])
        else:
            value = np.logical_or.reduce([v for v, _ in parts])
        return value & known, known


def _rule_values(p: RulesParams, candles: Candles) -> list[np.ndarray]:
    ev = _Evaluator(candles)
    false = np.zeros(len(candles), dtype=bool)
    return [false if r is None else ev.rule(r)[0] for r in (p.entry_long, p.exit_long, p.entry_short, p.exit_short)]


class _HistoryStream:
    def __init__(self, p: RulesParams) -> None:
        self.p = p
        self.cols: list[list[float]] = [[], [], [], [], [], []]
        self.state = 0.0

    def update(
        self,
        ts: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        forecast: float | None = None,
    ) -> float:
        for col, v in zip(self.cols, (float(ts), open, high, low, close, volume), strict=True):
            col.append(v)
        candles = Candles.from_arrays(*self.cols)
        el, xl, es, xs = (bool(v[-1]) for v in _rule_values(self.p, candles))
        self.state = state_machine_step(self.state, el, xl, es, xs)
        return self.state

    def get_state(self) -> dict[str, Any]:
        return {"state": self.state, "history": [list(c) for c in self.cols]}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.state = float(state["state"])
        self.cols = [[float(v) for v in c] for c in state["history"]]


class RuleStrategy(Strategy):
    name: ClassVar[str] = "rules"
    title: ClassVar[str] = "Rule builder"
    description: ClassVar[str] = (
        "Entry and exit rules on any registered indicator, combined with all/any/not; built as JSON, no code."
    )
    params_model: ClassVar[type[StrategyParams]] = RulesParams

    @property
    def p(self) -> RulesParams:
        assert isinstance(self.params, RulesParams)
        return self.params

    def warmup(self) -> int:
        lb = 0
        for rule in self.p._rules():
            extra = 1 if _has_cross(rule) else 0
            for op in _operands(rule):
                if isinstance(op, IndicatorOperand):
                    lb = max(lb, op.lookback() + extra)
        return lb

    def targets(self, candles: Candles, forecast: FloatArray | None = None) -> FloatArray:
        el, xl, es, xs = _rule_values(self.p, candles)
        if self.p.entry_short is None:
            return state_machine_targets(el, xl)
        return state_machine_targets(el, xl, es, xs)

    def stream(self) -> StrategyStream:
        return _HistoryStream(self.p)
