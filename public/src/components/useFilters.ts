/** A page's filters live in the address (shareable, kept on reload); changing one goes back to the first page. */
import { useSearchParams } from "react-router";

export function useFilters(): [URLSearchParams, (key: string, value: string) => void] {
  const [params, setParams] = useSearchParams();
  const setFilter = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    // An empty value is kept for `status`, where it means "any" rather than the page's default.
    if (value || key === "status") next.set(key, value);
    else next.delete(key);
    if (key !== "page") next.delete("page");
    setParams(next);
  };
  return [params, setFilter];
}
