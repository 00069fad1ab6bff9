#!/usr/bin/env node
// `npm start`: apply the D1 migrations locally, make sure the vars file holds ADMIN_TOKEN, KBS_MASTER_KEY and
// TOKEN_SIGNING_KEY, run wrangler dev, and once it answers print where it is and what to try.
// The port is `npm start -- --port N`, else $PORT, else 8787; every argument goes on to wrangler dev.
// KBS_STATE_DIR keeps the local state elsewhere than .wrangler/state, and KBS_VARS_FILE the secrets elsewhere
// than .dev.vars: the demo and the crash drill run with their own, leaving the operator's alone.
import { spawnSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";

const wrangler = ["node_modules/wrangler/bin/wrangler.js"];
const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };
const args = process.argv.slice(2);
/** The value of `--name V` or `--name=V` among the arguments for wrangler dev. */
const flag = (name) => {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  return i < 0 ? undefined : args[i].includes("=") ? args[i].slice(args[i].indexOf("=") + 1) : args[i + 1];
};
const port = flag("port") ?? process.env.PORT ?? "8787";
const ip = flag("ip");
const host = !ip || ["0.0.0.0", "::", "*"].includes(ip) ? "localhost" : ip;

const persist = process.env.KBS_STATE_DIR ? ["--persist-to", process.env.KBS_STATE_DIR] : [];
// Migrations that already ran are recorded in the database; a database from before migrations existed
// takes 0001 (all IF NOT EXISTS) as applied and is upgraded by the later ones. wrangler's progress tables
// are only shown when it fails; piped, it also applies without asking.
const migrate = spawnSync(process.execPath, [...wrangler, "d1", "migrations", "apply", "kbs", "--local", ...persist], { env, encoding: "utf8" });
if (migrate.status !== 0) {
  process.stderr.write(`${migrate.stdout}${migrate.stderr}${migrate.error ?? ""}\nD1: applying the migrations failed (above).\n`);
  process.exit(migrate.status ?? 1);
}
const total = readdirSync("migrations").filter((f) => f.endsWith(".sql")).length;
const applied = /Migrations to be applied:([\s\S]*?)About to apply/.exec(migrate.stdout)?.[1].match(/[\w.-]+\.sql/g) ?? [];
console.log(applied.length ? `D1: applied ${applied.length} pending migration(s) (${applied.join(", ")}); ${total} in all.` : `D1: up to date (${total} migrations).`);

// Local secrets: a random admin token, master key and token signing key, created once and kept in the vars
// file (.dev.vars is git-ignored). wrangler reads it with dotenv: a single-quoted value is taken literally, which the
// signing key's JSON (double quotes, no single quote) needs; the others are double-quoted as before.
const varsFile = process.env.KBS_VARS_FILE ?? ".dev.vars";
let vars = existsSync(varsFile) ? readFileSync(varsFile, "utf8") : "";
const read = (name) => new RegExp(`^${name}=(.*)$`, "m").exec(vars)?.[1]?.replace(/^(["'])(.*)\1$/, "$2");
const ensure = (name, make, quote = '"') => {
  if (read(name)) return;
  vars = `${vars}${vars && !vars.endsWith("\n") ? "\n" : ""}${name}=${quote}${make()}${quote}\n`;
  writeFileSync(varsFile, vars, { mode: 0o600 });
  console.log(`Added a new random ${name} to ${varsFile}.`);
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

// wrangler reads .dev.vars by itself; another file replaces it (and .env) through --env-file.
const envFile = process.env.KBS_VARS_FILE ? ["--env-file", varsFile] : [];
const dev = spawn(process.execPath, [...wrangler, "dev", ...(flag("port") ? [] : ["--port", port]), ...persist, ...envFile, ...args], { stdio: "inherit", env });
dev.on("exit", (code) => process.exit(code ?? 0));

// The banner, once the Worker answers (wrangler's own output comes first). Any answer below 500 will do:
// /kbs/v0/ refuses with 401 by design.
const origin = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
for (;;) {
  try {
    if ((await fetch(`${origin}/kbs/v0/`, { signal: AbortSignal.timeout(1000) })).status < 500) break;
  } catch {
    // not listening yet
  }
  await new Promise((r) => setTimeout(r, 300));
}
const rule = "─".repeat(78);
console.log(`\n${rule}
  edgekbs (local) is up: ${origin}/kbs/v0
  Admin token: ADMIN_TOKEN in ${varsFile} (local only). For the CLI and curl in another shell:
    export KBS_ADMIN_TOKEN=${read("ADMIN_TOKEN")}${port === "8787" && host === "localhost" ? "" : `\n    export KBS_URL=${origin}`}
  Next: npm run kbs -- workload list
        npm run demo    (a lab SNP guest and a lab SEV guest get their secrets: no hardware needed)
${rule}\n`);
