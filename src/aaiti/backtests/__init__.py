"""backtests domain."""
