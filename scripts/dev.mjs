#!/usr/bin/env node
// `npm start`: apply schema.sql to the local D1, make sure .dev.vars holds ADMIN_TOKEN and KBS_MASTER_KEY, run wrangler dev.
// KBS_STATE_DIR keeps the local state elsewhere than .wrangler/state (the crash drill uses its own).
import { spawnSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const wrangler = ["node_modules/wrangler/bin/wrangler.js"];
const run = (args) => {
  const r = spawnSync(process.execPath, [...wrangler, ...args], { stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

const persist = process.env.KBS_STATE_DIR ? ["--persist-to", process.env.KBS_STATE_DIR] : [];
run(["d1", "execute", "kbs", "--local", ...persist, "--file=schema.sql"]);
// A local database from an earlier schema keeps its old tables (the schema only adds what is missing).
const probe = spawnSync(process.execPath, [...wrangler, "d1", "execute", "kbs", "--local", ...persist, "--command=SELECT s.wrapped_key, w.generation, a.shard FROM secrets s, workloads w, audit_log a LIMIT 0"], { encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
if (probe.status !== 0) {
  console.error("The local D1 predates the current schema. Remove .wrangler/state (local data only) and run npm start again.");
  process.exit(1);
}

// Local secrets: a random admin token and master key, created once and kept in .dev.vars (git-ignored).
let vars = existsSync(".dev.vars") ? readFileSync(".dev.vars", "utf8") : "";
const read = (name) => new RegExp(`^${name}=(.*)$`, "m").exec(vars)?.[1]?.replace(/^"|"$/g, "");
const ensure = (name, make) => {
  if (read(name)) return;
  vars = `${vars}${vars && !vars.endsWith("\n") ? "\n" : ""}${name}="${make()}"\n`;
  writeFileSync(".dev.vars", vars, { mode: 0o600 });
  console.log(`Added a new random ${name} to .dev.vars.`);
};
ensure("ADMIN_TOKEN", () => randomBytes(32).toString("hex"));
ensure("KBS_MASTER_KEY", () => `dev1:${randomBytes(32).toString("base64")}`);
console.log(`\nAdmin token (local only): ${read("ADMIN_TOKEN")}\n`);

const dev = spawn(process.execPath, [...wrangler, "dev", "--port", process.env.PORT ?? "8787", ...persist, ...process.argv.slice(2)], {
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
dev.on("exit", (code) => process.exit(code ?? 0));
