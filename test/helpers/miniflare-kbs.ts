// The Worker listening on a local port, for Node tests that need a KBS over HTTP (the CLI's): src/index.ts
// bundled by esbuild and run by Miniflare in workerd, with wrangler.toml's bindings and the D1 migrations
// applied. About 2 s to start, where `npm start` (wrangler dev) takes over 10.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { build } from "esbuild";
import { Miniflare, Response as MiniflareResponse } from "miniflare";
import { parse } from "smol-toml";

const ROOT = new URL("../../", import.meta.url);

/** The parts of wrangler.toml that Miniflare needs. */
interface WranglerToml {
  compatibility_date: string;
  compatibility_flags: string[];
  vars: Record<string, string>;
  d1_databases: { binding: string; database_id: string }[];
  durable_objects: { bindings: { name: string; class_name: string }[] };
  migrations: { new_sqlite_classes?: string[] }[];
  ratelimits: { name: string; simple: { limit: number; period: number } }[];
}

export interface MiniflareKbs {
  /** The base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  dispose(): Promise<void>;
}

/** Starts the Worker with `bindings` over wrangler.toml's vars; every outbound fetch (KDS) fails with 599. */
export async function startMiniflareKbs(bindings: Record<string, string>): Promise<MiniflareKbs> {
  const toml = parse(readFileSync(new URL("wrangler.toml", ROOT), "utf8")) as unknown as WranglerToml;
  const bundle = await build({
    entryPoints: [new URL("src/index.ts", ROOT).pathname],
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    external: ["node:*", "cloudflare:*"],
  });
  const sqlite = new Set(toml.migrations.flatMap((m) => m.new_sqlite_classes ?? []));
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    modules: [{ type: "ESModule", path: new URL("index.js", ROOT).pathname, contents: bundle.outputFiles[0]!.text }],
    compatibilityDate: toml.compatibility_date,
    compatibilityFlags: toml.compatibility_flags,
    bindings: { ...toml.vars, ...bindings },
    d1Databases: Object.fromEntries(toml.d1_databases.map((d) => [d.binding, d.database_id])),
    durableObjects: Object.fromEntries(toml.durable_objects.bindings.map((b) => [b.name, { className: b.class_name, useSQLite: sqlite.has(b.class_name) }])),
    ratelimits: Object.fromEntries(toml.ratelimits.map((r) => [r.name, { simple: r.simple }])),
    outboundService: (request: { url: string }) => new MiniflareResponse(`outbound fetch blocked in tests: ${request.url}`, { status: 599 }),
  });
  try {
    const url = await mf.ready;
    const db = await mf.getD1Database("DB");
    for (const m of await readD1Migrations(fileURLToPath(new URL("migrations/", ROOT)))) await db.batch(m.queries.map((q) => db.prepare(q)));
    return { url: url.origin, dispose: () => mf.dispose() };
  } catch (e) {
    await mf.dispose();
    throw e;
  }
}
