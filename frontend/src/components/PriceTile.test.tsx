import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Price } from "../api/types";
import { PriceTile } from "./PriceTile";

const NOW = Date.parse("2026-11-24T12:00:00Z");

function price(overrides: Partial<Price> = {}): Price {
  return {
    symbol: "BTC",
    price: 91234.5,
    change_24h_pct: -1.234,
    as_of: "2026-11-24T11:59:50Z",
    stale: false,
    source: "coingecko",
    ...overrides,
  };
}

describe("PriceTile", () => {
  it("shows price, 24h change and source, without a stale badge for fresh data", () => {
    render(<PriceTile symbol="BTC" price={price()} nowMs={NOW} />);
    const tile = screen.getByTestId("price-tile-BTC");
    expect(within(tile).getByTestId("price-value")).toHaveTextContent("$91,234.50");
    expect(tile).toHaveTextContent("−1.23% 24h");
    expect(tile).toHaveTextContent("coingecko · 10 s ago");
    expect(screen.queryByTestId("stale-badge")).not.toBeInTheDocument();
  });

  it("marks stale data with a visible badge giving the age of as_of", () => {
    render(<PriceTile symbol="ETH" price={price({ symbol: "ETH", stale: true, as_of: "2026-11-24T11:47:00Z" })} nowMs={NOW} />);
    expect(screen.getByTestId("stale-badge")).toHaveTextContent("stale · 13 min old");
  });

  it("says so when the server returned no price for the symbol", () => {
    render(<PriceTile symbol="LTC" price={null} nowMs={NOW} />);
    expect(screen.getByText("The server returned no price for LTC.")).toBeInTheDocument();
    expect(screen.queryByTestId("price-value")).not.toBeInTheDocument();
  });
});
