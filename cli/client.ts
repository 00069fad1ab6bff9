// How admin commands reach a KBS: which URL and token, and what its answers mean for the exit code.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { envOf, EXIT, UsageError, type Io } from "./command";

export const DEFAULT_URL = "http://localhost:8787";

/** --url and --token, which every admin command takes. */
export const CONNECTION_OPTIONS = { url: { type: "string" }, token: { type: "string" } } as const;

export const JSON_OPTION = { json: { type: "boolean" } } as const;

/**
 * The --help of a command that talks to a KBS: its own options, then --url, --token and --json, aligned; then
 * what it does.
 */
export function adminHelp(options: [flag: string, text: string][], text: string): string {
  const all: [string, string][] = [
    ...options,
    ["--url", `the KBS base URL (default: $KBS_URL, else ${DEFAULT_URL})`],
    ["--token", "an admin token or JWT (default: $KBS_ADMIN_TOKEN, else for a localhost URL the ADMIN_TOKEN\nthat npm start wrote to the checkout's .dev.vars, or to $KBS_VARS_FILE)"],
    ["--json", "print JSON for scripts instead of text"],
  ];
  const width = Math.max(...all.map(([flag]) => flag.length)) + 2;
  return `${all.map(([flag, help]) => `  ${flag.padEnd(width)}${help.replaceAll("\n", `\n${" ".repeat(width + 2)}`)}`).join("\n")}\n\n${text}`;
}

/** No answer from the KBS (unreachable, or it refused the credential, or it failed): exit 3. */
export class KbsUnavailable extends Error {}

/** The KBS answered, and refused the request (an unknown workload, an invalid policy, …): exit 1. */
export class KbsRefused extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface Kbs {
  /** The base URL, without a trailing slash. */
  url: string;
  token: string;
  /** fetch, with network failures and non-2xx answers thrown as KbsUnavailable or KbsRefused. */
  fetch: typeof fetch;
  /** A JSON request to a path under the base URL; the parsed answer, or null for an empty one. */
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** ADMIN_TOKEN from a vars file as npm start writes it (dotenv: optionally quoted), or undefined. */
export function varsFileToken(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  return /^ADMIN_TOKEN=(.*)$/m.exec(text)?.[1]?.trim().replace(/^(["'])(.*)\1$/, "$2") || undefined;
}

/** The KBS of --url / $KBS_URL / the default, with the token of --token / $KBS_ADMIN_TOKEN / npm start's vars file. */
export function connect(values: { url?: string; token?: string }, io: Io): Kbs {
  const env = envOf(io);
  const raw = values.url ?? env.KBS_URL ?? DEFAULT_URL;
  let parsed: URL | undefined;
  try {
    parsed = new URL(raw);
  } catch {
    parsed = undefined;
  }
  if (parsed?.protocol !== "http:" && parsed?.protocol !== "https:") throw new UsageError(`${values.url !== undefined ? "--url" : "KBS_URL"} is not an http(s) URL: ${raw}`);
  const url = raw.replace(/\/+$/, "");
  let token = values.token ?? env.KBS_ADMIN_TOKEN;
  let source = values.token !== undefined ? "--token" : "KBS_ADMIN_TOKEN";
  // The local token only ever goes to a local KBS: it is npm start's, and means nothing elsewhere.
  if (!token && LOOPBACK.has(parsed.hostname)) {
    // Where npm start keeps it (scripts/dev.mjs): $KBS_VARS_FILE, else the checkout's .dev.vars.
    const path = env.KBS_VARS_FILE ?? fileURLToPath(new URL("../.dev.vars", import.meta.url));
    token = varsFileToken(path);
    source = `ADMIN_TOKEN of ${path}`;
    if (token) io.stderr(`kbs: no --token or KBS_ADMIN_TOKEN; using the ${source}\n`);
  }
  if (!token) throw new UsageError("no admin token: give --token or set KBS_ADMIN_TOKEN");

  const checkedFetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    let res: Response;
    try {
      res = await (io.fetch ?? fetch)(request);
    } catch (e) {
      // undici's "fetch failed" names the real reason (ECONNREFUSED, ENOTFOUND, …) in its cause.
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new KbsUnavailable(`cannot reach ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    if (res.ok) return res;
    const where = `${request.method} ${new URL(request.url).pathname}`;
    const problem = await problemOf(res);
    if (res.status === 401 || res.status === 403 || res.status === 429) {
      throw new KbsUnavailable(`${url} refused the admin token from ${source}: ${problem} (${where})`);
    }
    if (res.status >= 500) throw new KbsUnavailable(`${url} failed: ${problem} (${where})`);
    throw new KbsRefused(`${problem} (${where})`, res.status);
  };

  return {
    url,
    token,
    fetch: checkedFetch,
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await checkedFetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return (text ? JSON.parse(text) : null) as T;
    },
  };
}

/**
 * "<status> <code>: <detail>" from a problem document: edgekbs's (type urn:edgekbs:<code>) or Trustee's
 * (type …/errors/<Variant>); else the status and the start of the body.
 */
async function problemOf(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const { type, detail } = JSON.parse(text) as { type?: unknown; detail?: unknown };
    if (typeof type === "string" && typeof detail === "string") return `${res.status} ${type.replace(/^.*[:/]/, "")}: ${detail}`;
  } catch {
    // not JSON: a proxy's page, say
  }
  return `HTTP ${res.status} ${text.slice(0, 120).replace(/\s+/g, " ")}`.trim();
}

/** The exit code of an error from this module, or undefined for any other error. */
export function exitOf(e: unknown): number | undefined {
  if (e instanceof KbsUnavailable) return EXIT.failed;
  if (e instanceof KbsRefused) return EXIT.rejected;
  return undefined;
}
