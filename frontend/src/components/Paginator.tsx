import TablePagination from "@mui/material/TablePagination";
import { PAGE_SIZES } from "../lib/usePagination";

export interface PaginatorProps {
  total: number;
  page: number;
  rowsPerPage: number;
  setPage: (page: number) => void;
  setRowsPerPage: (size: number) => void;
}

export function Paginator({ total, page, rowsPerPage, setPage, setRowsPerPage }: PaginatorProps) {
  return (
    <TablePagination
      component="div"
      count={total}
      page={total === 0 ? 0 : Math.min(page, Math.max(0, Math.ceil(total / rowsPerPage) - 1))}
      rowsPerPage={rowsPerPage}
      rowsPerPageOptions={PAGE_SIZES}
      onPageChange={(_, p) => setPage(p)}
      onRowsPerPageChange={(e) => setRowsPerPage(Number(e.target.value))}
    />
  );
}
