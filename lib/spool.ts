/**
 * A directory of envelopes waiting to be published, one file each: written to a temporary name, fsynced, then
 * renamed into place, so a record is either whole in the spool or not there, and a crash (SIGKILL, power loss) after
 * `add` returned loses none. Names sort in the order the envelopes were added. Several processes may share a spool:
 * whoever publishes an entry first removes it, and the consumers' de-duplication on the envelope id makes a copy
 * published twice harmless.
 */
import { mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import type { EventEnvelope } from "./events";

export class EnvelopeSpool {
  private sequence = 0;

  constructor(
    readonly dir: string,
    private readonly limit: number,
  ) {}

  /** Adds the envelope durably; false (nothing written) when the spool already holds `limit` entries. */
  async add(envelope: EventEnvelope): Promise<boolean> {
    await mkdir(this.dir, { recursive: true });
    if ((await this.pending()).length >= this.limit) return false;
    const name = `${Date.now().toString().padStart(15, "0")}-${String(this.sequence++).padStart(6, "0")}-${envelope.id}`;
    const temporary = path.join(this.dir, `.${name}.tmp`);
    const file = await open(temporary, "w");
    try {
      await file.writeFile(JSON.stringify(envelope));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path.join(this.dir, `${name}.json`));
    return true;
  }

  /** The entries waiting, oldest first. */
  async pending(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((name) => name.endsWith(".json")).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }

  /** An entry's envelope, or undefined when another process has published and removed it meanwhile. */
  async read(name: string): Promise<EventEnvelope | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.dir, name), "utf8")) as EventEnvelope;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async remove(name: string): Promise<void> {
    await unlink(path.join(this.dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }
}
