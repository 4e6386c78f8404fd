"""aaiti: Auto AI Trading Interface."""
