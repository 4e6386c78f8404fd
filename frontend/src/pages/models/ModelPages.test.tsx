import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { EvaluationRow, Model } from "../../api/research";
import { session } from "../../auth/session";
import { json, mockFetch } from "../../test/http";
import { renderWithApp } from "../../test/render";
import { ModelCreateForm } from "./ModelCreateForm";
import { ModelDetailPage } from "./ModelDetailPage";
import { ModelMetricsTable } from "./ModelMetricsTable";

const ROWS: EvaluationRow[] = [
  { metric: "rmse", model: 323.337, naive: 327.318, better: "model" },
  { metric: "directional_accuracy", model: 0.571, naive: null, better: null },
];
const REASONS = { "naive.directional_accuracy": "the naive forecast makes no directional call on the test set" };

const USER = { id: "u1", email: "t@example.com", role: "trader", is_active: true, created_at: "2026-01-01T00:00:00Z", last_login: null };

const MODEL: Model = {
  id: "m1",
  name: "lin btc",
  algorithm: "linear",
  algorithm_name: "Linear regression",
  requested_algorithm: "linear",
  family: "machine_learning",
  kind: "value",
  target_timeframe: "1d",
  symbols: ["BTC"],
  parameters: { calibration_fraction: 0.2 },
  training: {
    target: "price",
    horizon: 1,
    interval_level: 0.9,
    seed: 0,
    evaluation: { method: "holdout", test_fraction: 0.2, folds: 3 },
    start_ts: null,
    end_ts: null,
    source: "dataset",
    dataset: "BTC-USD_1d",
    candle_source: null,
  },
  training_status: "trained",
  training_error: null,
  training_job: null,
  performance_metrics: { evaluation: { n_test: 366, method: "holdout", null_reasons: REASONS }, live: null },
  evaluation: ROWS,
  latest_version: null,
  created_at: "2026-11-24T13:45:49Z",
  last_trained: "2026-11-24T13:45:51Z",
};

describe("ModelMetricsTable", () => {
  it("puts the naive value in the same row as the model's", () => {
    render(<ModelMetricsTable rows={ROWS} nullReasons={REASONS} />);
    const headers = screen.getAllByRole("columnheader").map((h) => h.textContent);
    expect(headers.slice(1, 3)).toEqual(["model", "naive"]);
    const row = within(screen.getByTestId("metric-rmse"));
    expect(row.getByText("RMSE")).toBeInTheDocument();
    expect(row.getByText("323.34")).toBeInTheDocument();
    expect(row.getByText("327.32")).toBeInTheDocument();
  });

  it("shows a null metric as a dash carrying the server's reason", () => {
    render(<ModelMetricsTable rows={ROWS} nullReasons={REASONS} />);
    const row = within(screen.getByTestId("metric-directional_accuracy"));
    expect(row.getByText("57.1%")).toBeInTheDocument();
    expect(row.getByLabelText("the naive forecast makes no directional call on the test set")).toHaveTextContent("—");
  });
});

describe("model pages", () => {
  beforeEach(() => session.setTokens({ access_token: "a", refresh_token: null, token_type: "bearer", expires_in: 900, refresh_expires_in: 604800 }));
  afterEach(() => {
    vi.unstubAllGlobals();
    session.clear();
  });

  it("trains from the detail page and shows the job's progress", async () => {
    const job = { id: "j1", kind: "ml.train", status: "running", progress: 0.4, message: "fold 1", error: null, created_at: "2026-11-24T13:45:49Z", started_at: null, finished_at: null };
    const server = mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      if (call.url === "/api/models/m1/train")
        return json(202, { job, model: { ...MODEL, training_status: "training", training_job: job }, version: 2 });
      if (call.url === "/api/jobs/j1") return json(200, job);
      if (call.url === "/api/models/m1") return json(200, MODEL);
      return json(200, { items: [], total: 0 });
    });
    renderWithApp(<ModelDetailPage />, { path: "/models/:id", initial: "/models/m1" });

    expect(await screen.findByText("323.34")).toBeInTheDocument();
    await userEvent.click(await screen.findByRole("button", { name: "Retrain" }));
    expect(await screen.findByText("Training version 2")).toBeInTheDocument();
    expect(await screen.findByRole("progressbar", { name: "job j1 progress" })).toHaveAttribute("aria-valuenow", "40");
    expect(server.calls.some((c) => c.url === "/api/models/m1/train" && c.method === "POST")).toBe(true);
  });

  it("lists unavailable algorithms with their reason and shows the server's 422 detail", async () => {
    const server = mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      if (call.url === "/api/models/algorithms")
        return json(200, {
          items: [
            { id: "arima", name: "ARIMA", family: "statistical", kind: "value", description: "ARIMA on the log close", engine: "statsforecast", available: true, reason: null, aliases: [], params_schema: {}, defaults: { d: 1 } },
            { id: "prophet", name: "Prophet", family: "statistical", kind: "value", description: "", engine: "prophet", available: false, reason: "prophet is not installed on this server", aliases: [], params_schema: {}, defaults: {} },
          ],
          seed_aliases: {},
        });
      if (call.url === "/api/models" && call.method === "POST")
        return json(422, { error: "invalid", detail: "invalid parameters for arima: d: Input should be less than or equal to 3" });
      return json(404, { error: "not_found", detail: "no" });
    });
    renderWithApp(<ModelCreateForm onCreated={() => {}} onCancel={() => {}} />);

    await userEvent.type(await screen.findByLabelText(/Name/), "arima btc");
    await userEvent.click(screen.getByRole("combobox", { name: /Algorithm/ }));
    expect(await screen.findByText("prophet is not installed on this server")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("option", { name: /ARIMA \(arima\)/ }));
    const params = screen.getByLabelText("Parameters (JSON)");
    expect(params).toHaveValue(JSON.stringify({ d: 1 }, null, 2));
    await userEvent.clear(params);
    await userEvent.type(params, '{{"d": 9}');
    await userEvent.click(screen.getByRole("button", { name: "Create model" }));

    expect(await screen.findByText("invalid parameters for arima: d: Input should be less than or equal to 3")).toBeInTheDocument();
    const post = server.calls.find((c) => c.method === "POST" && c.url === "/api/models");
    expect(post?.body).toMatchObject({ name: "arima btc", algorithm: "arima", parameters: { d: 9 }, dataset: "BTC-USD_1d" });
  });
});
