"""``aaiti backtest``: the API's backtest on the terminal, with no server and no database.

It validates with the API's rules (:func:`aaiti.backtests.service.plan_offline`), runs the same
:func:`aaiti.backtests.tasks.execute` as the job worker, and prints the report the API stores: the metrics table
(undefined metrics with their reason), a trades summary, the robustness table of the run kind and the
fingerprint. ``--json`` prints the whole output instead. Data: the bundled datasets (``--dataset``, repeatable
for a portfolio), optionally aggregated to a coarser ``--timeframe``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import ValidationError

from aaiti.data import bundled_datasets, load_bundled
from aaiti.trading.candles import TIMEFRAME_MS

KINDS = {"single": "single", "sweep": "sweep", "walk-forward": "walk_forward", "monte-carlo": "monte_carlo"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = [d.name for d in bundled_datasets()]
    data = p.add_argument_group("data")
    data.add_argument("--dataset", action="append", required=True, choices=names, help="bundled candles (repeatable)")
    data.add_argument(
        "--timeframe", choices=list(TIMEFRAME_MS), help="aggregate to this timeframe (default: the data's)"
    )
    data.add_argument(
        "--start", help="first bar's open time, ISO date/time (UTC if no zone); default: the data's first"
    )
    data.add_argument("--end", help="end of the range, exclusive; default: after the data's last bar")
    strat = p.add_argument_group("strategy")
    strat.add_argument("--strategy", required=True, help="a strategy name (see GET /api/backtests/strategies)")
    strat.add_argument("--params", default="{}", help="strategy parameters as JSON")
    ex = p.add_argument_group("execution (BacktestConfig)")
    ex.add_argument("--config", default="{}", help="a full BacktestConfig as JSON; the flags below override it")
    ex.add_argument("--cash", type=float, help="initial cash")
    ex.add_argument("--fee-bps", type=float, help="taker fee, bps (market orders)")
    ex.add_argument("--maker-bps", type=float, help="maker fee, bps (take-profit limit orders)")
    ex.add_argument("--slippage-bps", type=float, help="adverse slippage, bps")
    ex.add_argument("--stop-loss", type=float, help="fraction against the entry, e.g. 0.05")
    ex.add_argument("--take-profit", type=float, help="fraction in favour of the entry")
    ex.add_argument("--trailing-stop", type=float, help="fraction below the best price since entry")
    ex.add_argument("--allow-short", action="store_true", help="margin account that may hold shorts")
    ex.add_argument("--engine", choices=["auto", "vectorized", "event"], default="auto")
    run = p.add_argument_group("run kind")
    run.add_argument("--kind", choices=list(KINDS), default="single")
    run.add_argument("--grid", help='sweep / walk-forward grid as JSON, e.g. \'{"fast": [5, 10], "slow": [30, 50]}\'')
    run.add_argument("--metric", default="sharpe", help="sweep sort / walk-forward optimisation metric")
    run.add_argument("--train-bars", type=int)
    run.add_argument("--test-bars", type=int)
    run.add_argument("--step-bars", type=int)
    run.add_argument("--anchored", action="store_true")
    run.add_argument(
        "--mc-method", choices=["trade_reshuffle", "trade_bootstrap", "return_block_bootstrap"], default=None
    )
    run.add_argument("--sims", type=int, default=1000)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--block-days", type=int, default=5)
    out = p.add_argument_group("report")
    out.add_argument("--periods-per-year", type=float, default=365.0)
    out.add_argument("--risk-free", type=float, default=0.0, help="annual risk-free rate")
    out.add_argument("--trades", type=int, default=10, help="trades to list (first N)")
    out.add_argument("--json", action="store_true", help="print the whole result as JSON")


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def build_request(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The API request body the flags describe, and symbol -> dataset."""
    datasets = {d.name: d for d in bundled_datasets()}
    chosen = [datasets[n] for n in args.dataset]
    symbols = [d.symbol for d in chosen]
    if len(set(symbols)) != len(symbols):
        raise ValueError("give each symbol once (one dataset per symbol)")
    timeframe = args.timeframe or chosen[0].timeframe
    first = max(int(load_bundled(d.name).ts[0]) for d in chosen)
    last = min(int(load_bundled(d.name).ts[-1]) + TIMEFRAME_MS[d.timeframe] for d in chosen)
    start = _parse_time(args.start) if args.start else datetime.fromtimestamp(first / 1000, tz=UTC)
    end = _parse_time(args.end) if args.end else datetime.fromtimestamp(last / 1000, tz=UTC)
    config: dict[str, Any] = _json_arg(args.config, "--config")
    if args.cash is not None:
        config["initial_cash"] = args.cash
    fees = dict(config.get("fees", {}))
    if args.fee_bps is not None:
        fees["taker_bps"] = args.fee_bps
    if args.maker_bps is not None:
        fees["maker_bps"] = args.maker_bps
    config["fees"] = fees
    if args.slippage_bps is not None:
        config["slippage"] = {**config.get("slippage", {}), "bps": args.slippage_bps}
    stops = dict(config.get("stops", {}))
    for key in ("stop_loss", "take_profit", "trailing_stop"):
        if getattr(args, key) is not None:
            stops[key] = getattr(args, key)
    config["stops"] = stops
    if args.allow_short:
        config["allow_short"] = True
    kind = KINDS[args.kind]
    body: dict[str, Any] = {
        "symbols": symbols,
        "timeframe": timeframe,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "strategy": args.strategy,
        "params": _json_arg(args.params, "--params"),
        "config": config,
        "engine": args.engine,
        "kind": kind,
        "periods_per_year": args.periods_per_year,
        "risk_free_rate": args.risk_free,
    }
    grid = _json_arg(args.grid, "--grid") if args.grid else None
    if kind == "sweep":
        body["sweep"] = {"grid": grid, "metric": args.metric}
    elif kind == "walk_forward":
        wf: dict[str, Any] = {"grid": grid, "metric": args.metric, "anchored": args.anchored}
        for key in ("train_bars", "test_bars", "step_bars"):
            if getattr(args, key) is not None:
                wf[key] = getattr(args, key)
        body["walk_forward"] = wf
    elif kind == "monte_carlo":
        mc: dict[str, Any] = {"n_sims": args.sims, "seed": args.seed, "block_days": args.block_days}
        if args.mc_method:
            mc["method"] = args.mc_method
        body["monte_carlo"] = mc
    return body, {d.symbol: d.name for d in chosen}


# ------------------------------------------------------------------------------------------------------ report


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "fraction":
        return f"{value * 100:,.2f} %"
    if unit == "percent":
        return f"{value:,.2f} %"
    if unit == "currency":
        return f"{value:,.2f}"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "days":
        return f"{value:,.1f} d"
    return f"{value:,.3f}"


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _metrics_table(metrics: Mapping[str, Mapping[str, Any]], out: TextIO) -> None:
    out.write(f"{'metric':<28} {'value':>18}  note\n")
    for name, m in metrics.items():
        note = m.get("reason") or ""
        out.write(f"{name:<28} {format_value(m.get('value'), str(m.get('unit', ''))):>18}  {note}\n")


def _trades(trades: Sequence[Mapping[str, Any]], limit: int, out: TextIO) -> None:
    by_reason: dict[str, int] = {}
    by_side: dict[str, int] = {}
    for t in trades:
        by_reason[t["exit_reason"]] = by_reason.get(t["exit_reason"], 0) + 1
        by_side[t["side"]] = by_side.get(t["side"], 0) + 1
    fees = sum(float(t["fees"]) for t in trades)
    pnl = sum(float(t["pnl"]) for t in trades)
    sides = ", ".join(f"{k} {v}" for k, v in sorted(by_side.items())) or "none"
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())) or "none"
    out.write(f"\nTrades: {len(trades)} ({sides}); exits: {reasons}; fees {fees:,.2f}; P&L {pnl:,.2f}\n")
    if not trades or limit <= 0:
        return
    out.write(
        f"{'#':>4} {'symbol':<6} {'side':<5} {'entry (UTC)':<16} {'price':>12} {'exit (UTC)':<16} {'price':>12} "
        f"{'exit reason':<13} {'fees':>10} {'P&L':>12} {'return':>9}\n"
    )
    for i, t in enumerate(trades[:limit]):
        out.write(
            f"{i + 1:>4} {t['symbol']:<6} {t['side']:<5} {_day(t['entry_ts']):<16} {t['entry_price']:>12,.2f} "
            f"{_day(t['exit_ts']):<16} {t['exit_price']:>12,.2f} {t['exit_reason']:<13} {t['fees']:>10,.2f} "
            f"{t['pnl']:>12,.2f} {t['return'] * 100:>8.2f}%\n"
        )
    if len(trades) > limit:
        out.write(f"     ... {len(trades) - limit} more (--trades N)\n")


def _robustness(rob: Mapping[str, Any], out: TextIO) -> None:
    kind = rob.get("type")
    if kind == "monte_carlo":
        out.write(f"\nMonte Carlo ({rob['method']}, {rob['n_sims']} paths, seed {rob['seed']}): ")
        out.write(f"probability of loss {rob['prob_loss'] * 100:.1f} %\n")
        out.write(f"{'metric':<14} {'actual':>12} " + " ".join(f"{p:>10}" for p in rob["bands"]["sharpe"]) + "\n")
        for name, bands in rob["bands"].items():
            unit = "ratio" if name == "sharpe" else "fraction"
            cells = " ".join(f"{format_value(v, unit):>10}" for v in bands.values())
            out.write(f"{name:<14} {format_value(rob['actual'].get(name), unit):>12} {cells}\n")
        if rob.get("note"):
            out.write(f"note: {rob['note']}\n")
    elif kind == "sweep":
        metric = rob["metric"]
        rows = [r for r in rob["rows"] if r["metrics"] is not None]
        rows.sort(
            key=lambda r: (r["metrics"]["values"].get(metric) is None, -(r["metrics"]["values"].get(metric) or 0))
        )
        out.write(f"\nSweep: {len(rob['rows'])} parameter sets ({rob['errors']} invalid); top by {metric}:\n")
        for r in rows[:10]:
            v = r["metrics"]["values"]
            out.write(
                f"  {json.dumps(r['params'], sort_keys=True):<50} {metric} {format_value(v.get(metric), 'ratio'):>10}"
                f"  return {format_value(v.get('total_return'), 'fraction'):>12}\n"
            )
    elif kind == "walk_forward":
        out.write(f"\nWalk-forward: {len(rob['windows'])} windows, optimising {rob['metric']} in-sample\n")
        for w in rob["windows"]:
            oos = w["out_of_sample"]["values"]
            out.write(
                f"  test {_day(w['test_start_ts'])}..{_day(w['test_end_ts'])}  "
                f"{json.dumps(w['best_params'], sort_keys=True):<45} "
                f"return {format_value(oos.get('total_return'), 'fraction'):>10}\n"
            )


def print_report(spec: Any, output: Mapping[str, Any], sources: Mapping[str, str], limit: int, out: TextIO) -> None:
    out.write(
        f"Backtest  {spec.name} ({spec.kind}); {spec.strategy} {json.dumps(spec.params, sort_keys=True)}\n"
        f"Data      {', '.join(f'{s}: {d}' for s, d in sources.items())}; {spec.timeframe}, "
        f"{_day(output['first_ts'])} .. {_day(output['last_ts'])} UTC, {output['bars']} bars; "
        f"engine {output['engine']}\n"
        f"Capital   {output['initial_cash']:,.2f} -> {output['final_equity']:,.2f}\n\n"
    )
    _metrics_table(output["metrics"], out)
    _trades(output["trades"], limit, out)
    if output.get("robustness"):
        _robustness(output["robustness"], out)
    fp = output["fingerprint"]
    out.write(
        f"\nFingerprint {fp['combined']}\n  data {fp['data']}\n  config {fp['config']}\n  trades {fp['trades']}\n"
        f"  code {fp['code_version']}\n"
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from aaiti.backtests.schemas import BacktestIn
    from aaiti.backtests.service import plan_offline
    from aaiti.backtests.tasks import execute
    from aaiti.core.errors import AppError

    try:
        body, datasets = build_request(args)
        plan = plan_offline(BacktestIn.model_validate(body), datasets)
        output = execute(plan.spec, {r.symbol: r.candles for r in plan.resolved})
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"error: {'.'.join(map(str, first['loc']))}: {first['msg']}", file=sys.stderr)
        return 2
    except AppError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stream = out or sys.stdout
    if args.json:
        json.dump(output, stream, indent=1, sort_keys=True)
        stream.write("\n")
    else:
        print_report(plan.spec, output, datasets, args.trades, stream)
    return 0
