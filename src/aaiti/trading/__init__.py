"""The pure trading kernel: candles, indicators, strategies, fills, accounting and metrics.

No database, no clock, no I/O, no web framework: everything here is a deterministic function of its inputs,
so the backtest engine and the paper bots share exactly the same code path.
"""
