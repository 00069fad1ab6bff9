#!/usr/bin/env node
// `npm start`: apply schema.sql to the local D1, make sure .dev.vars holds an ADMIN_TOKEN, run wrangler dev.
import { spawnSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const wrangler = ["node_modules/wrangler/bin/wrangler.js"];
const run = (args) => {
  const r = spawnSync(process.execPath, [...wrangler, ...args], { stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

run(["d1", "execute", "kbs", "--local", "--file=schema.sql"]);

const vars = existsSync(".dev.vars") ? readFileSync(".dev.vars", "utf8") : "";
let token = /^ADMIN_TOKEN=(.*)$/m.exec(vars)?.[1]?.replace(/^"|"$/g, "");
if (!token) {
  token = randomBytes(32).toString("hex");
  writeFileSync(".dev.vars", `${vars}${vars && !vars.endsWith("\n") ? "\n" : ""}ADMIN_TOKEN="${token}"\n`, { mode: 0o600 });
  console.log("Created .dev.vars with a new random ADMIN_TOKEN.");
}
console.log(`\nAdmin token (local only): ${token}\n`);

const dev = spawn(process.execPath, [...wrangler, "dev", "--port", "8787", ...process.argv.slice(2)], {
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
dev.on("exit", (code) => process.exit(code ?? 0));
