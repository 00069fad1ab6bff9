#!/usr/bin/env node
// `npm start`: apply the D1 migrations locally, make sure .dev.vars holds ADMIN_TOKEN, KBS_MASTER_KEY and
// TOKEN_SIGNING_KEY, run wrangler dev.
// KBS_STATE_DIR keeps the local state elsewhere than .wrangler/state (the crash drill uses its own).
import { spawnSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const wrangler = ["node_modules/wrangler/bin/wrangler.js"];
const run = (args) => {
  const r = spawnSync(process.execPath, [...wrangler, ...args], { stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

const persist = process.env.KBS_STATE_DIR ? ["--persist-to", process.env.KBS_STATE_DIR] : [];
// Migrations that already ran are recorded in the database; a database from before migrations existed
// takes 0001 (all IF NOT EXISTS) as applied and is upgraded by the later ones.
run(["d1", "migrations", "apply", "kbs", "--local", ...persist]);

// Local secrets: a random admin token, master key and token signing key, created once and kept in .dev.vars
// (git-ignored). wrangler reads .dev.vars with dotenv: a single-quoted value is taken literally, which the
// signing key's JSON (double quotes, no single quote) needs; the others are double-quoted as before.
let vars = existsSync(".dev.vars") ? readFileSync(".dev.vars", "utf8") : "";
const read = (name) => new RegExp(`^${name}=(.*)$`, "m").exec(vars)?.[1]?.replace(/^(["'])(.*)\1$/, "$2");
const ensure = (name, make, quote = '"') => {
  if (read(name)) return;
  vars = `${vars}${vars && !vars.endsWith("\n") ? "\n" : ""}${name}=${quote}${make()}${quote}\n`;
  writeFileSync(".dev.vars", vars, { mode: 0o600 });
  console.log(`Added a new random ${name} to .dev.vars.`);
};
ensure("ADMIN_TOKEN", () => randomBytes(32).toString("hex"));
ensure("KBS_MASTER_KEY", () => `dev1:${randomBytes(32).toString("base64")}`);
// Signs the Trustee protocol's attestation tokens (ES256): a private P-256 JWK on one line, with a random kid.
ensure(
  "TOKEN_SIGNING_KEY",
  () => {
    const { kty, crv, x, y, d } = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
    return JSON.stringify({ kty, crv, x, y, d, kid: randomBytes(8).toString("hex") });
  },
  "'",
);
console.log(`\nAdmin token (local only): ${read("ADMIN_TOKEN")}\n`);

const dev = spawn(process.execPath, [...wrangler, "dev", "--port", process.env.PORT ?? "8787", ...persist, ...process.argv.slice(2)], {
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
dev.on("exit", (code) => process.exit(code ?? 0));
