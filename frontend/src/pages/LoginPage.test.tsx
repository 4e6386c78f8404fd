import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { session } from "../auth/session";
import { json, mockFetch } from "../test/http";
import { renderWithApp } from "../test/render";
import { LoginPage } from "./LoginPage";

const user = { id: 1, email: "ada@example.com", role: "trader", is_active: true, created_at: "2026-01-01T00:00:00Z", last_login: null };

describe("LoginPage", () => {
  beforeEach(() => session.clear());
  afterEach(() => vi.unstubAllGlobals());

  it("validates the fields before calling the server", async () => {
    const server = mockFetch(() => json(500));
    renderWithApp(<LoginPage />, { path: "/login" });

    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(screen.getByText("Enter your email address.")).toBeInTheDocument();
    expect(screen.getByText("Enter your password.")).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText(/Email/), "not-an-email");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(screen.getByText("Enter a valid email address.")).toBeInTheDocument();
    // Only the mount-time attempt to resume a session from the refresh cookie; no login call.
    expect(server.calls.map((c) => c.url)).toEqual(["/api/auth/refresh"]);
  });

  it("shows the server's detail when the credentials are refused", async () => {
    const server = mockFetch(() => json(401, { error: "unauthorized", detail: "Incorrect email or password" }));
    renderWithApp(<LoginPage />, { path: "/login" });

    await userEvent.type(screen.getByLabelText(/Email/), "ada@example.com");
    await userEvent.type(screen.getByLabelText(/Password/), "wrong password");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("Incorrect email or password");
    const calls = server.calls.filter((c) => c.url !== "/api/auth/refresh");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      url: "/api/auth/login",
      method: "POST",
      body: { email: "ada@example.com", password: "wrong password", refresh_cookie: true },
      authorization: null,
    });
    expect(session.getAccessToken()).toBeNull();
  });

  it("stores the tokens and leaves for the page that was asked for", async () => {
    const server = mockFetch((call) => {
      if (call.url === "/api/auth/login") {
        return json(200, {
          access_token: "a1",
          refresh_token: null,
          token_type: "bearer",
          expires_in: 900,
          refresh_expires_in: 604800,
        });
      }
      if (call.url === "/api/auth/me") return json(200, user);
      return json(404, { error: "not_found", detail: "nope" });
    });
    renderWithApp(<LoginPage />, { path: "/login", routes: { "/": <p>dashboard</p> } });

    await userEvent.type(screen.getByLabelText(/Email/), "  ada@example.com ");
    await userEvent.type(screen.getByLabelText(/Password/), "correct horse");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByText("dashboard")).toBeInTheDocument();
    expect(session.getAccessToken()).toBe("a1");
    const loginCall = server.calls.find((c) => c.url === "/api/auth/login");
    expect(loginCall?.body).toEqual({ email: "ada@example.com", password: "correct horse", refresh_cookie: true });
    await waitFor(() => expect(server.calls.some((c) => c.url === "/api/auth/me")).toBe(true));
  });

  it("explains why the previous session ended", () => {
    mockFetch(() => json(500));
    session.clear("expired");
    renderWithApp(<LoginPage />, { path: "/login" });
    expect(screen.getByText("Your session has expired. Please sign in again.")).toBeInTheDocument();
  });
});
