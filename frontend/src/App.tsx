import { lazy } from "react";
import { Route, Routes } from "react-router";
import { RequireAdmin, RequireAuth } from "./auth/guards";
import { AppShell } from "./layout/AppShell";
import { AuthLayout } from "./pages/AuthLayout";
import { LoginPage } from "./pages/LoginPage";
import { RegisterPage } from "./pages/RegisterPage";

// Route chunks: the chart library only loads with the Markets page.
const DashboardPage = lazy(() => import("./pages/DashboardPage"));
const MarketsPage = lazy(() => import("./pages/MarketsPage"));
const JobsPage = lazy(() => import("./pages/JobsPage"));
const AuditLogPage = lazy(() => import("./pages/AuditLogPage"));
const AdminUsersPage = lazy(() => import("./pages/AdminUsersPage"));
const AccountPage = lazy(() => import("./pages/AccountPage"));
const NotFoundPage = lazy(() => import("./pages/NotFoundPage"));
const BacktestsPage = lazy(() => import("./pages/backtests/BacktestsPage"));
const BacktestDetailPage = lazy(() => import("./pages/backtests/BacktestDetailPage"));
const BacktestComparePage = lazy(() => import("./pages/backtests/BacktestComparePage"));
const ModelsPage = lazy(() => import("./pages/models/ModelsPage"));
const ModelDetailPage = lazy(() => import("./pages/models/ModelDetailPage"));
const ModelComparePage = lazy(() => import("./pages/models/ModelComparePage"));

export function AppRoutes() {
  return (
    <Routes>
      <Route
        path="/login"
        element={
          <AuthLayout title="Sign in">
            <LoginPage />
          </AuthLayout>
        }
      />
      <Route
        path="/register"
        element={
          <AuthLayout title="Create an account">
            <RegisterPage />
          </AuthLayout>
        }
      />
      <Route element={<RequireAuth />}>
        <Route element={<AppShell />}>
          <Route index element={<DashboardPage />} />
          <Route path="markets" element={<MarketsPage />} />
          <Route path="backtests" element={<BacktestsPage />} />
          <Route path="backtests/compare" element={<BacktestComparePage />} />
          <Route path="backtests/:id" element={<BacktestDetailPage />} />
          <Route path="models" element={<ModelsPage />} />
          <Route path="models/compare" element={<ModelComparePage />} />
          <Route path="models/:id" element={<ModelDetailPage />} />
          <Route path="jobs" element={<JobsPage />} />
          <Route path="audit-log" element={<AuditLogPage />} />
          <Route element={<RequireAdmin />}>
            <Route path="admin/users" element={<AdminUsersPage />} />
          </Route>
          <Route path="account" element={<AccountPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Route>
    </Routes>
  );
}
