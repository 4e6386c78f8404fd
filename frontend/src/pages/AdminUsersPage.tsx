import Alert from "@mui/material/Alert";
import Card from "@mui/material/Card";
import Chip from "@mui/material/Chip";
import MenuItem from "@mui/material/MenuItem";
import Select from "@mui/material/Select";
import Switch from "@mui/material/Switch";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableContainer from "@mui/material/TableContainer";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, errorMessage } from "../api/client";
import { keys } from "../api/queryClient";
import type { Id, Page, User, UserPatch } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ErrorAlert } from "../components/ErrorAlert";
import { Empty, Loading } from "../components/Loading";
import { PageHeader } from "../components/PageHeader";
import { Paginator } from "../components/Paginator";
import { formatDateTime } from "../lib/format";
import { usePagination } from "../lib/usePagination";

/** Roles the seed schema defines; a user with another role keeps it listed so the select can show it. */
const KNOWN_ROLES = ["trader", "admin"];

export default function AdminUsersPage() {
  const { user: me } = useAuth();
  const pagination = usePagination(25);
  const { limit, offset } = pagination;
  const queryClient = useQueryClient();

  const users = useQuery({
    queryKey: keys.users(limit, offset),
    queryFn: () => api.users.list({ limit, offset }),
    placeholderData: keepPreviousData,
  });

  const update = useMutation({
    mutationFn: ({ id, patch }: { id: Id; patch: UserPatch }) => api.users.update(id, patch),
    onSuccess: (updated) => {
      queryClient.setQueriesData<Page<User>>({ queryKey: keys.usersAll }, (data) =>
        data
          ? { ...data, items: data.items.map((u) => (String(u.id) === String(updated.id) ? updated : u)) }
          : data,
      );
    },
    onSettled: () => void queryClient.invalidateQueries({ queryKey: keys.usersAll }),
  });

  const pendingId = update.isPending ? String(update.variables.id) : null;

  return (
    <>
      <PageHeader title="Users" subtitle="Roles and account status. Changes end the user's current sessions." />
      {update.isError ? (
        <Alert severity="error" sx={{ mb: 2 }} onClose={() => update.reset()}>
          Could not update user {String(update.variables?.id)}: {errorMessage(update.error)}
        </Alert>
      ) : null}
      <Card variant="outlined">
        {users.isPending ? (
          <Loading label="Loading users…" />
        ) : users.isError ? (
          <ErrorAlert error={users.error} onRetry={() => void users.refetch()} />
        ) : users.data.items.length === 0 ? (
          <Empty>No users{offset > 0 ? " on this page" : ""}.</Empty>
        ) : (
          <TableContainer>
            <Table size="small" aria-label="Users">
              <TableHead>
                <TableRow>
                  <TableCell>ID</TableCell>
                  <TableCell>Email</TableCell>
                  <TableCell>Role</TableCell>
                  <TableCell>Active</TableCell>
                  <TableCell>Created</TableCell>
                  <TableCell>Last login</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {users.data.items.map((u) => {
                  const self = me !== null && String(me.id) === String(u.id);
                  const busy = pendingId === String(u.id);
                  const roles = KNOWN_ROLES.includes(u.role) ? KNOWN_ROLES : [...KNOWN_ROLES, u.role];
                  return (
                    <TableRow key={String(u.id)} data-testid={`user-row-${u.id}`}>
                      <TableCell>{u.id}</TableCell>
                      <TableCell>
                        {u.email} {self ? <Chip size="small" label="you" sx={{ ml: 1 }} /> : null}
                      </TableCell>
                      <TableCell>
                        <Select
                          size="small"
                          value={u.role}
                          disabled={busy}
                          onChange={(e) => update.mutate({ id: u.id, patch: { role: e.target.value } })}
                          inputProps={{ "aria-label": `Role of ${u.email}` }}
                        >
                          {roles.map((role) => (
                            <MenuItem key={role} value={role}>
                              {role}
                            </MenuItem>
                          ))}
                        </Select>
                      </TableCell>
                      <TableCell>
                        <Switch
                          checked={u.is_active}
                          disabled={busy}
                          onChange={(e) => update.mutate({ id: u.id, patch: { is_active: e.target.checked } })}
                          slotProps={{ input: { "aria-label": `${u.email} active` } }}
                        />
                      </TableCell>
                      <TableCell>{formatDateTime(u.created_at)}</TableCell>
                      <TableCell>{formatDateTime(u.last_login)}</TableCell>
                    </TableRow>
                  );
                })}
              </TableBody>
            </Table>
          </TableContainer>
        )}
        {users.data && users.data.total > 0 ? <Paginator total={users.data.total} {...pagination} /> : null}
      </Card>
    </>
  );
}
