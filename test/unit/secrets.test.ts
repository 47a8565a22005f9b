import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { developmentSecret } from "../../lib/secrets";

describe("developmentSecret", () => {
  it("gives nodes that start together one complete secret, and keeps it", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "aicunet-secrets-"));
    try {
      const made = await Promise.all(Array.from({ length: 20 }, () => developmentSecret(dir, "bus-signing-key")));
      expect(new Set(made.map((secret) => secret.value)).size).toBe(1);
      expect(made[0].value).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(made.filter((secret) => secret.generated)).toHaveLength(1);
      expect(await developmentSecret(dir, "bus-signing-key")).toEqual({ value: made[0].value, generated: false });
      // No drafts left behind.
      expect(await readdir(path.join(dir, "secrets"))).toEqual(["bus-signing-key"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
