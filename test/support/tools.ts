/**
 * Checks that need an optional tool (one that validates a deployment file, not one the system runs on): where the
 * tool is missing the check is reported as skipped, its name saying why and how to install the tool, instead of the
 * suite crashing on ENOENT.
 */
import { spawnSync } from "node:child_process";

export interface Tool {
  command: string;
  /** How to install it, e.g. "apt-get install docker-compose". */
  install: string;
}

export function toolInstalled(tool: Tool): boolean {
  return !spawnSync(tool.command, ["--help"], { stdio: "ignore" }).error;
}

/** `it` when the tool is installed; otherwise a skipped test whose name gives the reason and the install command. */
export function itWithTool(tool: Tool): (name: string, fn: jest.ProvidesCallback, timeout?: number) => void {
  if (toolInstalled(tool)) return it;
  return (name) => it.skip(`${name} [skipped: ${tool.command} is not installed; ${tool.install}]`, () => undefined);
}

/** `describe` when the tool is installed; otherwise the block's tests are skipped with the reason in its name. */
export function describeWithTool(tool: Tool): (name: string, fn: () => void) => void {
  if (toolInstalled(tool)) return describe;
  return (name, fn) => describe.skip(`${name} [skipped: ${tool.command} is not installed; ${tool.install}]`, fn);
}

export const DOCKER_COMPOSE: Tool = { command: "docker-compose", install: "apt-get install docker-compose" };
export const KUBECTL: Tool = {
  command: "kubectl",
  install: "see https://kubernetes.io/docs/tasks/tools/ (kubectl with its built-in kustomize)",
};
