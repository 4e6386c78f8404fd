import { screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "../auth/session";
import { json, mockFetch } from "../test/http";
import { renderWithApp } from "../test/render";
import { BotDetailPage, BotsPage } from "./ResourcePages";

describe("resource pages of APIs still being built", () => {
  beforeEach(() => session.setTokens({ access_token: "a", refresh_token: null, token_type: "bearer", expires_in: 900, refresh_expires_in: 604800 }));
  afterEach(() => {
    vi.unstubAllGlobals();
    session.clear();
  });

  it("shows the server's own message when the list endpoint is not implemented", async () => {
    const server = mockFetch((call) =>
      call.url.startsWith("/api/bots")
        ? json(501, { error: "not_implemented", detail: "Bots arrive with issue 7." })
        : json(200, {}),
    );
    renderWithApp(<BotsPage />, { path: "/bots" });

    expect(await screen.findByText("Bots arrive with issue 7.")).toBeInTheDocument();
    expect(screen.getByText("Not available")).toBeInTheDocument();
    expect(server.calls.find((c) => c.url.startsWith("/api/bots"))?.url).toBe("/api/bots?limit=25&offset=0");
  });

  it("lists what the server returned, linking each row to its deep link", async () => {
    mockFetch(() => json(200, { items: [{ id: 42, name: "trend follower", status: "stopped" }], total: 1 }));
    renderWithApp(<BotsPage />, { path: "/bots" });

    const link = await screen.findByRole("link", { name: "42" });
    expect(link).toHaveAttribute("href", "/bots/42");
    expect(screen.getByText("trend follower")).toBeInTheDocument();
  });

  it("renders a detail deep link from the URL and reports a 404 with its detail", async () => {
    const server = mockFetch(() => json(404, { error: "not_found", detail: "Bot 9 not found" }));
    renderWithApp(<BotDetailPage />, { path: "/bots/:id", initial: "/bots/9" });

    expect(await screen.findByText("Bot 9 not found")).toBeInTheDocument();
    expect(server.calls.some((c) => c.url === "/api/bots/9")).toBe(true);
  });
});
