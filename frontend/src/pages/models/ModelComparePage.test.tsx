import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "../../auth/session";
import { json, mockFetch } from "../../test/http";
import { renderWithApp } from "../../test/render";
import { ModelComparePage } from "./ModelComparePage";
import { ModelsPage } from "./ModelsPage";

const USER = { id: "u1", email: "t@example.com", role: "trader", is_active: true, created_at: "2026-01-01T00:00:00Z", last_login: null };

function listed(id: string, name: string, status: string) {
  return {
    id,
    name,
    algorithm: "linear",
    algorithm_name: "Linear regression",
    symbols: ["BTC"],
    target_timeframe: "1d",
    training: { horizon: 1 },
    training_status: status,
    evaluation: [],
    performance_metrics: null,
    last_trained: null,
  };
}

const COMPARED = {
  metric: "rmse",
  order: "lower_is_better",
  data_fingerprint: "ab12cd34ef56ab12cd34ef56",
  target: "price",
  horizon: 1,
  test_window: { first_origin_ts: 1_700_000_000_000, last_origin_ts: 1_730_000_000_000, n_origins: 366 },
  naive: { rmse: 327.318 },
  ranking: [
    { rank: 1, model_id: "m2", name: "arima btc", algorithm: "arima", version: 3, value: 301.512, naive_value: 327.318, null_reason: null, metrics: {} },
    { rank: 2, model_id: "m1", name: "lin btc", algorithm: "linear", version: 1, value: 323.337, naive_value: 327.318, null_reason: null, metrics: {} },
    { rank: null, model_id: "m3", name: "rf btc", algorithm: "random_forest", version: 1, value: null, naive_value: 327.318, null_reason: "no test predictions", metrics: {} },
  ],
};

describe("model comparison", () => {
  beforeEach(() =>
    session.setTokens({ access_token: "a", refresh_token: null, token_type: "bearer", expires_in: 900, refresh_expires_in: 604800 }),
  );
  afterEach(() => vi.unstubAllGlobals());

  it("selects trained models in the list and opens the comparison", async () => {
    mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      if (call.url.startsWith("/api/models?")) {
        const items = [listed("m1", "lin btc", "trained"), listed("m2", "arima btc", "trained"), listed("m4", "new one", "untrained")];
        return json(200, { items, total: 3, limit: 25, offset: 0 });
      }
      return json(404, { error: "not_found", detail: "nope" });
    });
    renderWithApp(<ModelsPage />, { path: "/models", routes: { "/models/compare": <p>compare page</p> } });

    const compare = await screen.findByRole("button", { name: /Compare/ });
    expect(compare).toBeDisabled();
    expect(screen.queryByLabelText("select new one for comparison")).not.toBeInTheDocument();
    await userEvent.click(await screen.findByLabelText("select lin btc for comparison"));
    await userEvent.click(screen.getByLabelText("select arima btc for comparison"));
    await userEvent.click(screen.getByRole("button", { name: "Compare (2)" }));

    expect(await screen.findByText("compare page")).toBeInTheDocument();
  });

  it("ranks the models next to the naive forecast and re-ranks by another metric", async () => {
    const server = mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      if (call.url === "/api/models/compare") {
        const body = call.body as { metric: string };
        return json(200, { ...COMPARED, metric: body.metric });
      }
      return json(404, { error: "not_found", detail: "nope" });
    });
    renderWithApp(<ModelComparePage />, { path: "/models/compare", initial: "/models/compare?ids=m1,m2,m3" });

    const first = within(await screen.findByTestId("rank-m2"));
    expect(first.getByText("1")).toBeInTheDocument();
    expect(first.getByText("301.51")).toBeInTheDocument();
    expect(first.getByText("327.32")).toBeInTheDocument();
    expect(within(screen.getByTestId("rank-m3")).getByLabelText("no test predictions")).toHaveTextContent("—");
    expect(screen.getByText(/lower is better/)).toBeInTheDocument();
    expect(server.calls.find((c) => c.url === "/api/models/compare")?.body).toEqual({ model_ids: ["m1", "m2", "m3"], metric: "rmse" });

    await userEvent.click(screen.getByLabelText("Rank by"));
    await userEvent.click(await screen.findByRole("option", { name: "MAE" }));

    await waitFor(() =>
      expect(server.calls.filter((c) => c.url === "/api/models/compare").map((c) => (c.body as { metric: string }).metric)).toEqual([
        "rmse",
        "mae",
      ]),
    );
  });

  it("explains why models cannot be compared", async () => {
    mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      return json(422, { error: "invalid", detail: "the models were trained on different data" });
    });
    renderWithApp(<ModelComparePage />, { path: "/models/compare", initial: "/models/compare?ids=m1,m2" });

    expect(await screen.findByText("the models were trained on different data")).toBeInTheDocument();
    expect(screen.getByText("Cannot compare these models")).toBeInTheDocument();
  });
});
