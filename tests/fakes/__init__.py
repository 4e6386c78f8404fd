"""Test doubles that implement the project's contracts (fake CoinGecko server, clocks)."""
