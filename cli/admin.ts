// The admin commands: workloads, their secrets, rewrap and the audit log, through a running KBS's admin API.
import { verifyAuditLog } from "../src/audit/client";
import { toHex } from "../src/crypto/bytes";
import type * as z from "zod/mini";
import type { Rewrapped, SecretStored, WorkloadDetail, WorkloadList } from "../src/http/admin";
import { KeyId, LaunchMeasurement, SecretValue, teeOfMeasurement, WorkloadId } from "../src/http/body";
import { adminHelp, connect, CONNECTION_OPTIONS, JSON_OPTION, KbsRefused, type Kbs } from "./client";
import { EXIT, parseCommand, printJson, printTable, readInput, UsageError, type Command, type Io } from "./command";

/** What GET /kbs/v0/admin/workloads/<id> answers (GET /workloads lists the same without secrets: WorkloadList). */
type WorkloadJson = z.output<typeof WorkloadDetail>;
type SecretJson = WorkloadJson["secrets"][number];

const time = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString().replace(/\.\d+Z$/, "Z"));

/** An id argument checked with the KBS's own rule, which also keeps every URL path built from it unambiguous. */
function idArgument(schema: typeof WorkloadId | typeof KeyId, what: string, value: string): string {
  const r = schema.safeParse(value);
  if (!r.success) throw new UsageError(`${what} ${JSON.stringify(value)}: ${r.error.issues[0]!.message}`);
  return value;
}
const workloadId = (value: string) => idArgument(WorkloadId, "workload id", value);
const keyId = (value: string) => idArgument(KeyId, "key id", value);

const workloadPath = (id: string) => `/kbs/v0/admin/workloads/${encodeURIComponent(id)}`;
// A key id's slashes stay path separators: the admin routes take the rest of the path as the key id, and a
// resource path is repository/type/tag.
const keyPath = (key: string) => key.split("/").map(encodeURIComponent).join("/");
const secretPath = (id: string, key: string) => `${workloadPath(id)}/secrets/${keyPath(key)}`;

/** The workload, or null when the KBS knows none of that id. */
async function findWorkload(kbs: Kbs, id: string): Promise<WorkloadJson | null> {
  try {
    return await kbs.call<WorkloadJson>("GET", workloadPath(id));
  } catch (e) {
    if (e instanceof KbsRefused && e.status === 404) return null;
    throw e;
  }
}

const utf8Exact = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The file's bytes as text, exactly (a BOM or a trailing newline stays), or undefined if they are not UTF-8. */
function textOf(bytes: Uint8Array): string | undefined {
  try {
    return utf8Exact.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A value the admin API's text field takes as it is (1-512 bytes of UTF-8, no NUL), or the reason it does not. */
function secretText(bytes: Uint8Array): { text: string } | { why: string } {
  const text = textOf(bytes);
  if (text === undefined) return { why: "is not UTF-8 text" };
  const r = SecretValue.safeParse(text);
  return r.success ? { text } : { why: r.error.issues[0]!.message };
}

// ---------------------------------------------------------------------------------------------
// workload …

async function workloadRegister(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(
    args,
    { ...CONNECTION_OPTIONS, ...JSON_OPTION, measurement: { type: "string" }, tee: { type: "string" }, policy: { type: "string" }, "passphrase-file": { type: "string" } },
    ["<id>"],
  );
  const id = workloadId(positionals[0]!);
  if (values.measurement === undefined) throw new UsageError("--measurement is required");
  if (!LaunchMeasurement.safeParse(values.measurement).success) throw new UsageError("--measurement must be 96 hex characters (SNP MEASUREMENT) or 64 (SEV launch digest)");
  const tee = teeOfMeasurement(values.measurement);
  if (values.tee !== undefined && values.tee !== "snp" && values.tee !== "sev") throw new UsageError("--tee must be snp or sev");
  if (values.tee !== undefined && values.tee !== tee) throw new UsageError(`--tee ${values.tee}: the measurement is ${tee === "snp" ? "48 bytes, an SNP MEASUREMENT" : "32 bytes, a SEV launch digest"}`);
  let teeConfig = "";
  if (values.policy !== undefined) {
    const text = textOf(readInput("--policy", values.policy));
    if (text === undefined) throw new UsageError(`--policy ${values.policy}: is not UTF-8 text`);
    teeConfig = text;
  }
  let passphrase: string | undefined;
  if (values["passphrase-file"] !== undefined) {
    const path = values["passphrase-file"];
    const value = secretText(readInput("--passphrase-file", path));
    if ("why" in value) throw new UsageError(`--passphrase-file ${path}: ${value.why}`);
    passphrase = value.text;
  }
  const kbs = connect(values, io);
  const measurement = values.measurement.toLowerCase();

  let action: "registered" | "updated" = "registered";
  if (passphrase === undefined && (await findWorkload(kbs, id))?.deleted_at === null) {
    // Registering again would store a new passphrase: without one given, change only what was given.
    await kbs.call("PATCH", workloadPath(id), { launch_measurement: measurement, tee_config: teeConfig });
    action = "updated";
  } else {
    if (passphrase === undefined) {
      passphrase = toHex(crypto.getRandomValues(new Uint8Array(32)));
      io.stderr(`kbs: no --passphrase-file: ${id}'s passphrase (key id ${id}) is random and shown nowhere; \`kbs secret put ${id} ${id} --file FILE\` sets one\n`);
    }
    await kbs.call("POST", "/kbs/v0/register_workload", { workload_id: id, launch_measurement: measurement, tee_config: teeConfig, passphrase });
  }
  if (values.json) printJson(io, { workload_id: id, tee, launch_measurement: measurement, action });
  else io.stdout(`${action} ${tee} workload ${id}${action === "updated" ? " (its secrets are unchanged)" : ""}\n`);
  return EXIT.ok;
}

async function workloadList(args: string[], io: Io): Promise<number> {
  const { values } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION });
  const kbs = connect(values, io);
  const workloads: z.output<typeof WorkloadList>["workloads"] = [];
  for (let after = ""; ; ) {
    const page = await kbs.call<z.output<typeof WorkloadList>>("GET", `/kbs/v0/admin/workloads?limit=500&after=${encodeURIComponent(after)}`);
    workloads.push(...page.workloads);
    if (page.next === null) break;
    after = page.next;
  }
  if (values.json) printJson(io, workloads);
  else if (workloads.length === 0) io.stdout("no workloads\n");
  else {
    printTable(
      io,
      ["WORKLOAD", "TEE", "MEASUREMENT", "GENERATION", "UPDATED", "DELETED"],
      workloads.map((w) => [w.workload_id, w.tee, `${w.launch_measurement.slice(0, 16)}…`, String(w.generation), time(w.updated_at), time(w.deleted_at)]),
    );
  }
  return EXIT.ok;
}

function printSecrets(io: Io, secrets: SecretJson[]): void {
  if (secrets.length === 0) io.stdout("no secrets\n");
  else printTable(io, ["KEY ID", "VERSION", "MASTER KEY", "CREATED", "CREATED BY", "DELETED"], secrets.map((s) => [s.key_id, String(s.version), s.master_key, time(s.created_at), s.created_by, time(s.deleted_at)]));
}

async function workloadShow(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION }, ["<id>"]);
  const id = workloadId(positionals[0]!);
  const w = await connect(values, io).call<WorkloadJson>("GET", workloadPath(id));
  if (values.json) {
    printJson(io, w);
    return EXIT.ok;
  }
  const fields: [string, string][] = [
    ["workload", w.workload_id],
    ["tee", w.tee],
    ["measurement", w.launch_measurement],
    ["tee_config", w.tee_config === "" ? "(empty: the default policy)" : w.tee_config],
    ["generation", String(w.generation)],
    ["created", time(w.created_at)],
    ["updated", time(w.updated_at)],
    ["deleted", time(w.deleted_at)],
  ];
  for (const [name, value] of fields) io.stdout(`${name.padEnd(12)}${value}\n`);
  io.stdout("\n");
  printSecrets(io, w.secrets ?? []);
  return EXIT.ok;
}

/** DELETE, then with --destroy the POST …/destroy; a DELETE of what is already deleted (404) may still be destroyed. */
async function deleteThenDestroy(kbs: Kbs, path: string, query: string, destroy: boolean): Promise<void> {
  try {
    await kbs.call("DELETE", `${path}${query}`);
  } catch (e) {
    if (!(destroy && e instanceof KbsRefused && e.status === 404)) throw e;
  }
  if (destroy) await kbs.call("POST", `${path}/destroy`);
}

async function workloadDelete(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION, destroy: { type: "boolean" } }, ["<id>"]);
  const id = workloadId(positionals[0]!);
  await deleteThenDestroy(connect(values, io), workloadPath(id), "", values.destroy === true);
  if (values.json) printJson(io, { workload_id: id, deleted: true, destroyed: values.destroy === true });
  else io.stdout(`${values.destroy ? "destroyed" : "deleted"} workload ${id}\n`);
  return EXIT.ok;
}

// ---------------------------------------------------------------------------------------------
// secret …

async function secretPut(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION, file: { type: "string" } }, ["<workload>", "<key_id>"]);
  const id = workloadId(positionals[0]!);
  const key = keyId(positionals[1]!);
  if (values.file === undefined) throw new UsageError("--file is required");
  const bytes = readInput("--file", values.file);
  if (bytes.length === 0) throw new UsageError(`--file ${values.file}: is empty`);
  const value = secretText(bytes);
  // Text the admin API takes goes there; other values (binary, longer) only as a Trustee resource, 64 KiB at most.
  if ("why" in value && key.split("/").length !== 3) {
    throw new UsageError(`--file ${values.file}: ${value.why}; such a value can only be a resource: a key id repository/type/tag of an SNP workload`);
  }
  const kbs = connect(values, io);
  let version: number;
  if ("text" in value) {
    ({ version } = await kbs.call<z.output<typeof SecretStored>>("PUT", secretPath(id, key), { value: value.text }));
  } else {
    // Trustee's resource API answers every refusal but a few as 401: check the workload here, where a refusal is plain.
    const w = await findWorkload(kbs, id);
    if (w === null || w.deleted_at !== null) throw new KbsRefused(`no live workload "${id}"`, 404);
    if (w.tee !== "snp") throw new KbsRefused(`workload "${id}" is ${w.tee}: a value that is not text of at most 512 bytes needs an SNP workload`, 400);
    await kbs.fetch(`${kbs.url}/kbs/v0/resource/${keyPath(key)}?workload_id=${encodeURIComponent(id)}`, {
      method: "POST",
      headers: { authorization: `Bearer ${kbs.token}`, "content-type": "application/octet-stream" },
      body: bytes,
    });
    const secrets = (await kbs.call<WorkloadJson>("GET", workloadPath(id))).secrets ?? [];
    version = Math.max(...secrets.filter((s) => s.key_id === key).map((s) => s.version));
  }
  if (values.json) printJson(io, { workload_id: id, key_id: key, version });
  else io.stdout(`stored ${id} ${key} version ${version}\n`);
  return EXIT.ok;
}

async function secretList(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION }, ["<workload>"]);
  const id = workloadId(positionals[0]!);
  const secrets = (await connect(values, io).call<WorkloadJson>("GET", workloadPath(id))).secrets ?? [];
  if (values.json) printJson(io, secrets);
  else printSecrets(io, secrets);
  return EXIT.ok;
}

async function secretDelete(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION, version: { type: "string" }, destroy: { type: "boolean" } }, ["<workload>", "<key_id>"]);
  const id = workloadId(positionals[0]!);
  const key = keyId(positionals[1]!);
  if (values.version !== undefined && !/^[1-9]\d{0,15}$/.test(values.version)) throw new UsageError("--version must be a version number (1, 2, …)");
  const version = values.version === undefined ? null : Number(values.version);
  await deleteThenDestroy(connect(values, io), secretPath(id, key), version === null ? "" : `?version=${version}`, values.destroy === true);
  if (values.json) printJson(io, { workload_id: id, key_id: key, version, deleted: true, destroyed: values.destroy === true });
  else io.stdout(`${values.destroy ? "destroyed" : "deleted"} ${id} ${key}${version === null ? "" : ` version ${version}`}${values.destroy ? " (every deleted version)" : ""}\n`);
  return EXIT.ok;
}

// ---------------------------------------------------------------------------------------------
// rewrap, audit verify

async function rewrap(args: string[], io: Io): Promise<number> {
  const { values } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION });
  const result = await connect(values, io).call<z.output<typeof Rewrapped>>("POST", "/kbs/v0/admin/rewrap");
  if (values.json) printJson(io, result);
  else io.stdout(`re-wrapped ${result.rewrapped} of ${result.total} data keys under the active master key\n`);
  return EXIT.ok;
}

async function auditVerify(args: string[], io: Io): Promise<number> {
  const { values } = parseCommand(args, { ...CONNECTION_OPTIONS, ...JSON_OPTION });
  const kbs = connect(values, io);
  const verdict = await verifyAuditLog(kbs.fetch, kbs.url, kbs.token);
  if (values.json) printJson(io, verdict);
  else if (verdict.ok) io.stdout(`the audit log is intact: ${verdict.rows} rows in ${verdict.shards} shards\n`);
  else io.stdout(`the audit log is NOT intact: shard ${verdict.shard}, row ${verdict.seq}: ${verdict.reason}\n`);
  return verdict.ok ? EXIT.ok : EXIT.rejected;
}

// ---------------------------------------------------------------------------------------------

export const adminCommands: Command[] = [
  {
    name: "workload register",
    synopsis: "<id> --measurement HEX [--tee snp|sev] [--policy FILE] [--passphrase-file FILE]",
    summary: "register a workload (or change a registered one's measurement and policy)",
    help: adminHelp(
      [
        ["--measurement", "the launch measurement: 96 hex (SNP MEASUREMENT) or 64 hex (SEV launch digest)"],
        ["--tee", "snp or sev: checked against the measurement's length"],
        ["--policy", "the tee_config, an SNP or SEV policy (JSON); default empty: the default policy"],
        ["--passphrase-file", "the passphrase: the file's exact bytes (1-512 bytes of UTF-8, no NUL); mind a trailing newline"],
      ],
      `POST /kbs/v0/register_workload. With --passphrase-file the passphrase becomes a new version of key id <id>.
Without it, a workload already live keeps its secrets and only its measurement and policy change (PATCH);
a new one gets a random passphrase that is shown nowhere (for workloads that only use other secrets).`,
    ),
    run: workloadRegister,
  },
  {
    name: "workload list",
    synopsis: "[--json]",
    summary: "list workloads, deleted ones included",
    help: adminHelp([], "GET /kbs/v0/admin/workloads, every page. A scoped token lists what its scope covers."),
    run: workloadList,
  },
  {
    name: "workload show",
    synopsis: "<id> [--json]",
    summary: "a workload's measurement, policy and secret versions (never a value)",
    help: adminHelp([], "GET /kbs/v0/admin/workloads/<id>: the workload and the metadata of every secret version. No command shows a value."),
    run: workloadShow,
  },
  {
    name: "workload delete",
    synopsis: "<id> [--destroy]",
    summary: "delete a workload (its sessions are revoked); --destroy also erases it and its secrets",
    help: adminHelp(
      [["--destroy", "then erase the workload and all its secrets (irreversible); also one deleted before"]],
      "DELETE /kbs/v0/admin/workloads/<id> (a soft delete: no session starts or reads a secret, the rows stay), then with\n--destroy POST …/destroy.",
    ),
    run: workloadDelete,
  },
  {
    name: "secret put",
    synopsis: "<workload> <key_id> --file FILE",
    summary: "store a new version of a secret",
    help: adminHelp(
      [["--file", "the value: the file's exact bytes (mind a trailing newline)"]],
      `Text of 1-512 bytes (UTF-8, no NUL) goes through PUT /kbs/v0/admin/workloads/<workload>/secrets/<key_id>:
any workload's guest can receive it (SEV's LAUNCH_SECRET slot holds 512 bytes). Any other value (binary, or
up to 64 KiB) must be a Trustee resource: a key id repository/type/tag of an SNP workload, stored through
POST /kbs/v0/resource/<key_id>?workload_id=<workload>. Either way it is a new version under the same key id.`,
    ),
    run: secretPut,
  },
  {
    name: "secret list",
    synopsis: "<workload> [--json]",
    summary: "a workload's secret versions (never a value)",
    help: adminHelp([], "The secrets of GET /kbs/v0/admin/workloads/<workload>: key id, version, master key, who stored it and when, deleted or not."),
    run: secretList,
  },
  {
    name: "secret delete",
    synopsis: "<workload> <key_id> [--version N] [--destroy]",
    summary: "delete a secret's live versions (or one); --destroy also erases its deleted versions",
    help: adminHelp(
      [
        ["--version", "delete only this version (default: every live version)"],
        ["--destroy", "then erase every deleted version of the key id (irreversible)"],
      ],
      "DELETE /kbs/v0/admin/workloads/<workload>/secrets/<key_id>[?version=N]: a deleted version is never released\nagain; guests get the newest live one. Then with --destroy POST …/destroy.",
    ),
    run: secretDelete,
  },
  {
    name: "rewrap",
    synopsis: "[--json]",
    summary: "re-wrap every data key under the active master key",
    help: adminHelp([], "POST /kbs/v0/admin/rewrap (unscoped credential). Run it after putting a new key first in KBS_MASTER_KEY\n(`kbs master-key new`); once it re-wrapped everything, the old key can be dropped."),
    run: rewrap,
  },
  {
    name: "audit verify",
    synopsis: "[--json]",
    summary: "check the whole audit log's hash chains against the witness",
    help: adminHelp(
      [],
      `Reads GET /kbs/v0/admin/audit/heads and every page of GET /kbs/v0/admin/audit (unscoped credential) and checks
each shard's hash chain and its witnessed head. Exit 0 when intact; 1 naming the first altered, missing or
reordered row (or a truncated tail).`,
    ),
    run: auditVerify,
  },
];
