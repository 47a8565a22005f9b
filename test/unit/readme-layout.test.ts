/** The README's layout section names every top-level folder the repository tracks, and no folder it does not have. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

const ROOT = path.join(__dirname, "..", "..");

it("lists exactly the repository's top-level folders", () => {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const layout = readme.slice(readme.indexOf("## Layout"));
  const named = new Set(
    [...layout.matchAll(/^\| ([^|]+) \|/gm)].flatMap(([, cell]) =>
      [...cell.matchAll(/`([^`/]+)\//g)].map(([, folder]) => folder),
    ),
  );
  const tracked = execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" })
    .split("\n")
    .filter((file) => file.includes("/") && !file.startsWith("."))
    .map((file) => file.split("/")[0]);
  expect([...named].sort()).toEqual([...new Set(tracked)].sort());
});
