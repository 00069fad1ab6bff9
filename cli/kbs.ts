// The `kbs` command line: a KBS's admin API (workloads, secrets, keys, audit, AMD certificates), fresh values
// for a deployment's secrets, and offline verification with the very verifier code the Worker runs.
// cli/bin.mjs is the executable; main is what it and the tests call.
import { ConfigError } from "../src/errors";
import { adminCommands } from "./admin";
import { amdCommands } from "./amd";
import { DEFAULT_URL, exitOf } from "./client";
import { EXIT, UsageError, type Command, type Io } from "./command";
import { keyCommands } from "./keys";
import { verifyCommands } from "./verify";

export type { Io } from "./command";

const GROUPS: [title: string, commands: Command[]][] = [
  ["Workloads, secrets and the audit log, through a KBS's admin API", adminCommands],
  ["AMD certificates, for deployments that must not depend on AMD's KDS", amdCommands],
  ["Fresh values for a deployment's secrets (printed, sent nowhere)", keyCommands],
  ["Offline verification (no KBS needed)", verifyCommands],
];
const COMMANDS = GROUPS.flatMap(([, commands]) => commands);

const synopsis = (c: Command) => `kbs ${c.name}${c.synopsis ? ` ${c.synopsis}` : ""}`;

const EXIT_CODES = `Exit codes, the same for every command:
  ${EXIT.ok}  success: done; the evidence verifies; the audit log is intact
  ${EXIT.rejected}  a negative answer: evidence refused, a tampered audit log, a certificate refused, or the KBS
     refused the request (an unknown workload, an invalid policy: its problem type and detail on stderr)
  ${EXIT.usage}  usage: a bad command line, a file that cannot be read, an unusable EXTRA_TRUSTED_ARKS
  ${EXIT.failed}  no answer: the KBS is unreachable, refused the admin token (401, 403, 429) or failed (5xx);
     or an internal error
Errors are one line on stderr, "kbs: …".`;

const OVERVIEW = `usage: kbs <command> [options]     (in the checkout: npm run kbs -- <command> [options])

${GROUPS.map(([title, commands]) => `${title}:\n${commands.map((c) => `  ${synopsis(c)}\n      ${c.summary}`).join("\n")}`).join("\n\n")}

Every command takes --help. Admin commands reach the KBS at --url, else $KBS_URL, else ${DEFAULT_URL}, with
the admin token of --token, else $KBS_ADMIN_TOKEN, else (for a localhost URL) the ADMIN_TOKEN that npm start
wrote to the checkout's .dev.vars (or to $KBS_VARS_FILE), which the CLI then says on stderr.

${EXIT_CODES}`;

const wordsOf = (c: Command) => c.name.split(" ");

/** Runs the command line on `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  // `kbs help <command>` is `kbs <command> --help`; --help counts anywhere before a "--".
  const args = argv[0] === "help" ? [...argv.slice(1), "--help"] : argv;
  const end = args.indexOf("--");
  const wantsHelp = (end < 0 ? args : args.slice(0, end)).some((a) => a === "--help" || a === "-h");

  const command = COMMANDS.find((c) => wordsOf(c).every((w, i) => args[i] === w));
  if (command) {
    if (wantsHelp) {
      io.stdout(`usage: ${synopsis(command)}\n\n${command.help}\n`);
      return EXIT.ok;
    }
    try {
      return await command.run(args.slice(wordsOf(command).length), io);
    } catch (e) {
      return failure(e, io, `kbs ${command.name} --help`);
    }
  }
  const group = COMMANDS.filter((c) => wordsOf(c).length > 1 && wordsOf(c)[0] === args[0]);
  if (group.length > 0) {
    if (wantsHelp) {
      io.stdout(`usage:\n${group.map((c) => `  ${synopsis(c)}\n      ${c.summary}`).join("\n")}\n\nEach takes --help.\n`);
      return EXIT.ok;
    }
    const known = group.map((c) => wordsOf(c)[1]).join(", ");
    const problem = args[1] === undefined || args[1].startsWith("-") ? `${args[0]} needs a subcommand: ${known}` : `unknown command ${args[0]} ${args[1]} (${args[0]} has: ${known})`;
    return failure(new UsageError(problem), io, `kbs ${args[0]} --help`);
  }
  if (wantsHelp && (args[0] === undefined || args[0].startsWith("-"))) {
    io.stdout(`${OVERVIEW}\n`);
    return EXIT.ok;
  }
  return failure(new UsageError(args[0] === undefined ? "a command is needed" : `unknown command ${args[0]}`), io, "kbs --help");
}

/** What escaped a command (verdicts never do): one line on stderr, and its exit code. */
function failure(e: unknown, io: Io, help: string): number {
  const line = (code: number, message: string) => {
    io.stderr(`kbs: ${message.replace(/\s+/g, " ")}\n`);
    return code;
  };
  if (e instanceof UsageError) return line(EXIT.usage, `${e.message} (see '${help}')`);
  if (e instanceof ConfigError) return line(EXIT.usage, e.message);
  const code = exitOf(e);
  if (code !== undefined) return line(code, (e as Error).message);
  // Not one of ours: a DOMException from WebCrypto, a bug. Name and message only, never a stack trace.
  const { name, message } = e instanceof Error || e instanceof DOMException ? e : { name: "thrown", message: String(e) };
  return line(EXIT.failed, `internal error: ${name}: ${message}`);
}
