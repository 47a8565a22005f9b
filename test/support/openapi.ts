/** Checks an OpenAPI document against the OpenAPI 3.1 schema with the validator's own CLI. */
import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export async function validateOpenApi(doc: unknown): Promise<unknown> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), "openapi-")), "openapi.json");
  await writeFile(file, JSON.stringify(doc));
  const cli = require.resolve("@seriousme/openapi-schema-validator/bin/validate-api-cli.js");
  return JSON.parse(execFileSync(process.execPath, [cli, file], { encoding: "utf8" }));
}
