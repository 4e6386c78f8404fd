import { useSearchParams } from "react-router";

export const PAGE_SIZES = [10, 25, 50, 100];

/** Page and page size kept in the URL (?page=&size=), so a paginated view is a shareable deep link. */
export function usePagination(defaultSize = 25) {
  const [params, setParams] = useSearchParams();
  const size = Number(params.get("size"));
  const rowsPerPage = PAGE_SIZES.includes(size) ? size : defaultSize;
  const pageParam = Number(params.get("page"));
  const page = Number.isInteger(pageParam) && pageParam > 0 ? pageParam : 0;

  const update = (nextPage: number, nextSize: number) => {
    const next = new URLSearchParams(params);
    if (nextPage > 0) next.set("page", String(nextPage));
    else next.delete("page");
    if (nextSize !== defaultSize) next.set("size", String(nextSize));
    else next.delete("size");
    setParams(next, { replace: true });
  };

  return {
    page,
    rowsPerPage,
    limit: rowsPerPage,
    offset: page * rowsPerPage,
    setPage: (p: number) => update(p, rowsPerPage),
    setRowsPerPage: (s: number) => update(0, s),
  };
}
