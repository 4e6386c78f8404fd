import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { researchApi } from "../api/research";
import { session } from "../auth/session";
import { json, mockFetch } from "../test/http";
import { renderWithApp } from "../test/render";
import { DeleteButton } from "./DeleteButton";

const USER = { id: "u1", email: "t@example.com", role: "trader", is_active: true, created_at: "2026-01-01T00:00:00Z", last_login: null };

function page() {
  return (
    <DeleteButton
      what="the backtest “SMA”"
      consequences="Its trades go with it."
      remove={() => researchApi.backtests.remove("b1")}
      listKey={["backtests"]}
      detailKey={["backtests", "detail", "b1"]}
      afterwards="/backtests"
    />
  );
}

describe("DeleteButton", () => {
  beforeEach(() =>
    session.setTokens({ access_token: "a", refresh_token: null, token_type: "bearer", expires_in: 900, refresh_expires_in: 604800 }),
  );
  afterEach(() => vi.unstubAllGlobals());

  it("asks first, deletes, then leaves for the list", async () => {
    const server = mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      if (call.url === "/api/backtests/b1" && call.method === "DELETE") return new Response(null, { status: 204 });
      return json(404, { error: "not_found", detail: "nope" });
    });
    renderWithApp(page(), { path: "/backtests/b1", routes: { "/backtests": <p>the list</p> } });

    await userEvent.click(screen.getByRole("button", { name: "Delete" }));
    expect(screen.getByText("Delete the backtest “SMA”?")).toBeInTheDocument();
    expect(server.calls.some((c) => c.method === "DELETE")).toBe(false);
    await userEvent.click(screen.getByRole("button", { name: "Delete" }));

    expect(await screen.findByText("the list")).toBeInTheDocument();
    expect(server.calls.filter((c) => c.method === "DELETE").map((c) => c.url)).toEqual(["/api/backtests/b1"]);
  });

  it("keeps the object when the user changes their mind", async () => {
    const server = mockFetch((call) => (call.url === "/api/auth/me" ? json(200, USER) : json(500)));
    renderWithApp(page(), { path: "/backtests/b1" });

    await userEvent.click(screen.getByRole("button", { name: "Delete" }));
    await userEvent.click(screen.getByRole("button", { name: "Keep it" }));

    await waitFor(() => expect(screen.queryByText("Delete the backtest “SMA”?")).not.toBeInTheDocument());
    expect(server.calls.some((c) => c.method === "DELETE")).toBe(false);
  });

  it("shows the server's refusal and stays", async () => {
    mockFetch((call) => {
      if (call.url === "/api/auth/me") return json(200, USER);
      return json(409, { error: "conflict", detail: "the model is referenced by backtests; delete those first" });
    });
    renderWithApp(page(), { path: "/backtests/b1", routes: { "/backtests": <p>the list</p> } });

    await userEvent.click(screen.getByRole("button", { name: "Delete" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete" }));

    expect(await screen.findByText("the model is referenced by backtests; delete those first")).toBeInTheDocument();
    expect(screen.getByText("Not deleted")).toBeInTheDocument();
    expect(screen.queryByText("the list")).not.toBeInTheDocument();
  });
});
