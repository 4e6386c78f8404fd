import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "../../auth/session";
import { json, mockFetch } from "../../test/http";
import { renderWithApp } from "../../test/render";
import { BacktestComparePage } from "./BacktestComparePage";
import { BacktestMetricsGrid } from "./BacktestMetricsGrid";
import { BacktestRunForm } from "./BacktestRunForm";
import { BacktestsPage } from "./BacktestsPage";

const USER = { id: "u1", email: "t@example.com", role: "trader", is_active: true, created_at: "2026-01-01T00:00:00Z", last_login: null };

const m = (value: number | null, unit: string, reason: string | null = null) => ({ value, unit, reason });

function summary(id: string, name: string, total: number) {
  return {
    id,
    name,
    kind: "single",
    strategy: "sma_crossover",
    strategy_params: { fast: 10, slow: 30 },
    symbols: ["BTC"],
    timeframe: "1d",
    range_start: "2017-01-01T00:00:00Z",
    range_end: "2018-01-01T00:00:00Z",
    engine: "vectorized",
    bars: 365,
    num_trades: 4,
    initial_capital: "10000",
    final_capital: "110598.65",
    total_return: total,
    headline: {
      total_return: m(total, "fraction"),
      sharpe: m(null, "ratio", "needs at least 30 daily returns, have 24"),
      max_drawdown: m(-0.275, "fraction"),
    },
    fingerprint: "92b1c6a8a0200117f53d8e5af7b79b47e162efe86280e5a5860d9717d1cda8c5",
    job_id: "j1",
    created_at: "2026-11-24T13:46:12Z",
  };
}

describe("BacktestMetricsGrid", () => {
  it("formats by unit and shows a null with its reason", () => {
    render(
      <BacktestMetricsGrid
        metrics={{ total_return: m(10.0599, "fraction"), profit_factor: m(null, "ratio", "no losing trades"), end_equity: m(110598.65, "currency") }}
      />,
    );
    expect(within(screen.getByTestId("bt-metric-total_return")).getByText("1005.99%")).toBeInTheDocument();
    expect(within(screen.getByTestId("bt-metric-end_equity")).getByText("$110,598.65")).toBeInTheDocument();
    expect(within(screen.getByTestId("bt-metric-profit_factor")).getByLabelText("no losing trades")).toHaveTextContent("—");
  });
});

describe("backtest pages", () => {
  beforeEach(() => session.setTokens({ access_token: "a", refresh_token: null, token_type: "bearer", expires_in: 900, refresh_expires_in: 604800 }));
  afterEach(() => {
    vi.unstubAllGlobals();
    session.clear();
  });

  it("lists headline metrics and compares the selected results", async () => {
    mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      return json(200, { items: [summary("a", "SMA test", 10.0599), summary("b", "EMA test", 7.633)], total: 2 });
    });
    renderWithApp(<BacktestsPage />, { path: "/backtests", routes: { "/backtests/compare": <div>compare route</div> } });

    const row = within((await screen.findByText("SMA test")).closest("tr") as HTMLElement);
    expect(row.getByText("1005.99%")).toBeInTheDocument();
    expect(row.getByText("-27.50%")).toBeInTheDocument();
    expect(row.getByLabelText("needs at least 30 daily returns, have 24")).toBeInTheDocument();

    const compare = screen.getByRole("button", { name: /Compare/ });
    expect(compare).toBeDisabled();
    await userEvent.click(screen.getByLabelText("select SMA test for comparison"));
    await userEvent.click(screen.getByLabelText("select EMA test for comparison"));
    await userEvent.click(compare);
    expect(await screen.findByText("compare route")).toBeInTheDocument();
  });

  it("compares results side by side, one column per result", async () => {
    const server = mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      return json(200, {
        items: [
          { ...summary("a", "SMA test", 10.0599), equity: null },
          { ...summary("b", "EMA test", 7.633), equity: null },
        ],
        metrics: { total_return: [m(10.0599, "fraction"), m(7.633, "fraction")], sharpe: [m(3.638, "ratio"), m(null, "ratio", "flat equity")] },
      });
    });
    renderWithApp(<BacktestComparePage />, { path: "/backtests/compare", initial: "/backtests/compare?ids=a,b" });

    const row = within((await screen.findByText("Sharpe")).closest("tr") as HTMLElement);
    expect(row.getByText("3.638")).toBeInTheDocument();
    expect(row.getByLabelText("flat equity")).toBeInTheDocument();
    expect(server.calls.some((c) => c.url === "/api/backtests/compare?ids=a%2Cb")).toBe(true);
  });

  it("prefills parameters from the strategy schema, submits, follows the job and links to the result", async () => {
    const job = { id: "j9", kind: "backtest.run", status: "succeeded", progress: 1, message: "done", error: null, created_at: "2026-11-24T13:46:12Z", started_at: null, finished_at: "2026-11-24T13:46:13Z" };
    const server = mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      if (call.url === "/api/backtests/strategies")
        return json(200, {
          strategies: [
            {
              name: "sma_crossover",
              title: "SMA crossover",
              description: "Long when the fast SMA is above the slow one",
              uses_forecast: false,
              params_schema: { properties: { fast: { type: "integer", default: 10 }, slow: { type: "integer", default: 30 } } },
            },
          ],
          config_schema: { properties: { initial_cash: { default: 10000 }, fees: { default: { maker_bps: 0, taker_bps: 10 } } } },
          run_kinds: {},
          timeframes: ["1h", "1d"],
          sortable_metrics: [],
          limits: {},
        });
      if (call.url === "/api/backtests" && call.method === "POST")
        return json(202, { job_id: "j9", backtest_id: "bt9", status: "queued", bars: 365, links: { job: "/api/jobs/j9", backtest: "/api/backtests/bt9" } });
      if (call.url === "/api/jobs/j9") return json(200, job);
      return json(404, { error: "not_found", detail: "no" });
    });
    renderWithApp(<BacktestRunForm onCancel={() => {}} />);

    expect(await screen.findByText("default 10")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("combobox", { name: /Strategy/ }));
    await userEvent.click(await screen.findByRole("option", { name: /SMA crossover/ }));
    expect(screen.getByLabelText("Strategy parameters (JSON)")).toHaveValue(JSON.stringify({ fast: 10, slow: 30 }, null, 2));
    await userEvent.type(screen.getByLabelText("Taker fee (bps)"), "5");
    await userEvent.click(screen.getByRole("button", { name: "Run backtest" }));

    const link = await screen.findByRole("link", { name: /Open the result/ });
    expect(link).toHaveAttribute("href", "/backtests/bt9");
    const post = server.calls.find((c) => c.method === "POST" && c.url === "/api/backtests");
    expect(post?.body).toMatchObject({
      symbols: ["BTC"],
      timeframe: "1d",
      start: "2017-01-01T00:00:00Z",
      end: "2018-01-01T00:00:00Z",
      strategy: "sma_crossover",
      params: { fast: 10, slow: 30 },
      config: { fees: { taker_bps: 5 } },
    });
  });
});
