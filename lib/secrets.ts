/** Secrets a development node may make for itself, kept under the data directory so restarts keep using them. */
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import path from "node:path";

export async function developmentSecret(dataDir: string, name: string): Promise<{ value: string; generated: boolean }> {
  const file = path.join(dataDir, "secrets", name);
  try {
    return { value: (await readFile(file, "utf8")).trim(), generated: false };
  } catch {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    // Written whole under a name of its own, then linked into place: nodes starting together (a test's cluster) all
    // read one complete secret, never a file another process is still writing.
    const draft = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
    await writeFile(draft, randomBytes(32).toString("base64url"), { mode: 0o600 });
    let generated = true;
    await link(draft, file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
      generated = false; // another process made it first: use theirs
    });
    await unlink(draft);
    return { value: (await readFile(file, "utf8")).trim(), generated };
  }
}
