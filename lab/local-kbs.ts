// A local KBS for the demo and the crash drill (Node only): `npm start` (scripts/dev.mjs) on a port of its own
// with its own state folder and vars file, so the operator's .dev.vars and .wrangler/state stay untouched.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { varsFileToken } from "../cli/client";

// The servers still running when this process ends, however it ends: each runs in a process group of its
// own, which neither this process's exit nor a Ctrl-C in its terminal reaches.
const running = new Set<LocalKbs>();
process.on("exit", () => running.forEach(stopLocalKbs));
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) process.on(signal, () => process.exit(code));

export interface LocalKbs {
  origin: string;
  dir: string;
  /** The running server (npm start's node); `stopLocalKbs` ends its whole process tree. */
  process: ChildProcess;
}

export interface LocalKbsOptions {
  port: number;
  /** Holds the state (`state/`), the vars file (`dev.vars`) and npm start's output (`server.log`). */
  dir: string;
  /** Vars for wrangler dev --var, e.g. EXTRA_TRUSTED_ARKS. */
  vars: Record<string, string>;
  /** More arguments for wrangler dev, e.g. `--inspector-port N` (the benchmarks profile the isolate through it). */
  args?: string[];
}

/** A TCP port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** Starts npm start and resolves once the Worker answers; the same `dir` again finds the same state. */
export async function startLocalKbs(opts: LocalKbsOptions): Promise<LocalKbs> {
  const log = openSync(join(opts.dir, "server.log"), "a");
  const child = spawn(process.execPath, ["scripts/dev.mjs", "--port", String(opts.port), ...Object.entries(opts.vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]), ...(opts.args ?? [])], {
    // A process group of its own, so that stopLocalKbs() reaches wrangler and workerd too.
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, KBS_STATE_DIR: join(opts.dir, "state"), KBS_VARS_FILE: join(opts.dir, "dev.vars") },
  });
  closeSync(log);
  const kbs = { origin: `http://127.0.0.1:${opts.port}`, dir: opts.dir, process: child };
  running.add(kbs);
  try {
    await answering(kbs);
  } catch (e) {
    stopLocalKbs(kbs);
    throw e;
  }
  return kbs;
}

async function answering(kbs: LocalKbs): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const { exitCode, signalCode } = kbs.process;
    if (exitCode !== null || signalCode !== null) throw new Error(`npm start ended (${exitCode ?? signalCode}); its output is in ${join(kbs.dir, "server.log")}`);
    try {
      // /kbs/v0/ refuses with 401 by design: an answer from the Worker itself, not from wrangler.
      if ((await fetch(`${kbs.origin}/kbs/v0/`, { signal: AbortSignal.timeout(1000) })).status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`npm start did not answer at ${kbs.origin} within 90 s`);
}

/** SIGKILL to the whole tree (npm start's node, wrangler, workerd): what the crash drill wants, and enough for a demo. */
export function stopLocalKbs(kbs: LocalKbs): void {
  running.delete(kbs);
  try {
    process.kill(-kbs.process.pid!, "SIGKILL");
  } catch (e) {
    // Already gone.
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
  }
}

/** The ADMIN_TOKEN npm start wrote to the vars file. */
export function adminToken(kbs: LocalKbs): string {
  const path = join(kbs.dir, "dev.vars");
  const token = varsFileToken(path);
  if (!token) throw new Error(`no ADMIN_TOKEN in ${path}`);
  return token;
}
