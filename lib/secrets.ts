/** Secrets a development node may make for itself, kept under the data directory so restarts keep using them. */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

export async function developmentSecret(dataDir: string, name: string): Promise<{ value: string; generated: boolean }> {
  const file = path.join(dataDir, "secrets", name);
  try {
    return { value: (await readFile(file, "utf8")).trim(), generated: false };
  } catch {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const value = randomBytes(32).toString("base64url");
    await writeFile(file, value, { mode: 0o600, flag: "wx" }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err; // another process made it first: use theirs
    });
    return { value: (await readFile(file, "utf8")).trim(), generated: true };
  }
}
