"""bots domain."""
