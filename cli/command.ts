// What every `kbs` command shares: where it writes, its exit codes, its argument parser, its file reads.
import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Where the command line writes and what it reads from its surroundings; the tests inject each part. */
export interface Io {
  stdout(s: string): void;
  stderr(s: string): void;
  /** The fetch admin commands use (default: the global fetch). */
  fetch?: typeof fetch;
  /** The environment (default: process.env). */
  env?: Record<string, string | undefined>;
}

/** Exit codes, the same for every command. */
export const EXIT = {
  /** Done; the evidence verifies (and passes the appraisal); the audit log is intact. */
  ok: 0,
  /** A negative answer: refused evidence, a tampered log, a request the KBS refused (e.g. an unknown workload). */
  rejected: 1,
  /** The command line or the environment is unusable: one line on stderr. */
  usage: 2,
  /** No answer: the KBS is unreachable, refused the credential or failed; or an internal error. One line on stderr. */
  failed: 3,
} as const;

/** A bad command line, or a file it names that cannot be read. */
export class UsageError extends Error {}

export interface Command {
  /** The words that name it: "verify snp", "master-key new". */
  name: string;
  /** What follows the name in its synopsis: "<id> --measurement HEX [--tee snp|sev]". */
  synopsis: string;
  /** One line for `kbs --help`. */
  summary: string;
  /** The rest of its --help: options, then what it does. */
  help: string;
  run(args: string[], io: Io): Promise<number>;
}

/**
 * node:util parseArgs, strict, with exactly the named positionals (a last one named "<…>..." takes one or more).
 * Its refusals (TypeErrors coded ERR_PARSE_ARGS_*) become UsageErrors of their first sentence, which names the option.
 */
export function parseCommand<const O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O, positionals: readonly string[] = []) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const code: unknown = (e as { code?: unknown } | null)?.code;
    if (e instanceof TypeError && typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) throw new UsageError(e.message.split(". ")[0]!);
    throw e;
  }
  const missing = positionals[parsed.positionals.length];
  if (missing) throw new UsageError(`missing ${missing.replace(/\.\.\.$/, "")}`);
  const extra = parsed.positionals[positionals.length];
  if (extra !== undefined && !positionals.at(-1)?.endsWith("...")) throw new UsageError(`unexpected argument ${extra}`);
  return parsed;
}

/** What a failed read of a file means, in words (Node's errno codes otherwise). */
const FILE_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
};

/** The reason a file operation failed, for a one-line message. */
export function fileError(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  return (typeof code === "string" && FILE_ERRORS[code]) || (e as Error).message;
}

/** A file named by `flag`; one that cannot be read is a usage error naming it. */
export function readInput(flag: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UsageError(`${flag} ${path}: ${fileError(e)}`);
  }
}

export function printJson(io: Io, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** Rows under a header, each column as wide as its widest cell. */
export function printTable(io: Io, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) io.stdout(`${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")}\n`);
}

export function envOf(io: Io): Record<string, string | undefined> {
  return io.env ?? process.env;
}
