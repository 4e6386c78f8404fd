"""Market data: the provider contract, CoinGecko, replay, and the pure helpers (resample, CSV import).

Import the concrete pieces from their modules (``aaiti.market.coingecko`` etc.); this package only re-exports the
contract types so importing it stays cheap (no HTTP client, no metrics registration).
"""

from aaiti.market.provider import (
    CandleSeries,
    MarketDataProvider,
    PriceQuote,
    ProviderStatus,
    SymbolInfo,
)

__all__ = ["CandleSeries", "MarketDataProvider", "PriceQuote", "ProviderStatus", "SymbolInfo"]
