/**
 * A directory of envelopes waiting to be published, one file each: written to a temporary name, fsynced, renamed
 * into place and the directory fsynced, so a record is either whole in the spool or not there, and a crash (SIGKILL,
 * power loss) after `add` returned loses none. Names sort in the order the envelopes were added. Several processes
 * may share a spool: whoever publishes an entry first removes it, and the consumers' de-duplication on the envelope
 * id makes a copy published twice harmless.
 */
import { mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import type { EventEnvelope } from "./events";

/** `work`'s result, or undefined when what it reads or removes is not there (another process got to it first). */
async function unlessMissing<T>(work: Promise<T>): Promise<T | undefined> {
  try {
    return await work;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function fsync(file: string): Promise<void> {
  const handle = await open(file, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

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
    // The rename is durable only once the directory entry is.
    await fsync(this.dir);
    return true;
  }

  /** The entries waiting, oldest first. */
  async pending(): Promise<string[]> {
    const names = await unlessMissing(readdir(this.dir));
    return (names ?? []).filter((name) => name.endsWith(".json")).sort();
  }

  /** An entry's envelope, or undefined when another process has published and removed it meanwhile. */
  async read(name: string): Promise<EventEnvelope | undefined> {
    const text = await unlessMissing(readFile(path.join(this.dir, name), "utf8"));
    return text === undefined ? undefined : (JSON.parse(text) as EventEnvelope);
  }

  async remove(name: string): Promise<void> {
    await unlessMissing(unlink(path.join(this.dir, name)));
  }
}
