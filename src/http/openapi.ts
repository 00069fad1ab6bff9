// GET /kbs/v0/openapi.json: an OpenAPI 3.1 document of every route the app registered. The paths come from the
// Hono apps' own routes (app.routes), the request schemas are the zod schemas the routers validate with (as JSON
// Schema, zod's toJSONSchema), and the answers' schemas are the ones the handlers are typed against. What the
// routes cannot say (summaries, who may call, which refusals) is in OPERATIONS below, keyed by method and path: a
// route without an entry, or an entry without a route, makes the document fail to build (test/node/openapi.test.ts).

import type { RouterRoute } from "hono/types";
import * as z from "zod/mini";
import { AmdImportAnswer, AmdImportBody } from "./admin-amd";
import { AuditHeads, AuditPage, AuditRows, HeadsPage, Page, Rewrapped, SecretBody, SecretStored, SecretVersion, WorkloadAnswer, WorkloadChange, WorkloadDetail, WorkloadList } from "./admin";
import { KeyId, WorkloadId } from "./body";
import { Liveness, NotReady, Readiness } from "./health";
import { AttestBody as LegacyAttestBody, AuthAnswer, AuthBody, RegisterBody } from "./legacy";
import { operations, pathParameters, templatePath } from "./routes";
import { AttestBody as TrusteeAttestBody, Jwks, TokenAnswer } from "./trustee";

type JsonSchema = Record<string, unknown>;

/** A zod schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect). Requests are described as sent (io "input"). */
function schema(s: z.ZodMiniType, io: "input" | "output"): JsonSchema {
  // Refinements and transforms have no JSON Schema form: the document states the shape, the server the rest.
  const { $schema: _, ...json } = z.toJSONSchema(s, { io, unrepresentable: "any" }) as JsonSchema;
  return json;
}
const request = (s: z.ZodMiniType) => schema(s, "input");
const answer = (s: z.ZodMiniType) => schema(s, "output");

/** Who may call: the admin credential, or a guest's session. */
type Caller = "public" | "admin" | "legacy-session" | "trustee-session" | "trustee-session-or-token" | "any-session";

/** Which error shape a route answers with: edgekbs's problem, Trustee's, or either (the paths both protocols share). */
type Surface = "edgekbs" | "trustee" | "shared";

interface OperationInfo {
  summary: string;
  description?: string;
  tag: "health" | "reference-kbs" | "trustee" | "admin" | "meta";
  caller: Caller;
  surface: Surface;
  /** A JSON body (its zod schema), or raw bytes. */
  body?: z.ZodMiniType | "bytes";
  /** Query parameters, all optional. */
  query?: Record<string, z.ZodMiniType>;
  /** Path parameters whose schema is not the default one for their name (PATH_PARAMETERS). */
  params?: Record<string, z.ZodMiniType>;
  /** Success answers by status: a description and the JSON schema or the content type of the body, if any. */
  ok: Record<number, { description: string; json?: z.ZodMiniType; content?: string }>;
  /** The refusals this route gives, besides 500 (a bug), which every route may. */
  errors: number[];
  /** A refusal whose problem document has extension members. */
  problems?: Record<number, z.ZodMiniType>;
}

const PATH_PARAMETERS: Record<string, z.ZodMiniType> = { id: WorkloadId, key_id: KeyId, repository: WorkloadId, type: WorkloadId, tag: WorkloadId };

const ADMIN_ERRORS = [400, 401, 403, 404, 409, 413, 415, 429, 503];
const ADMIN_READ_ERRORS = [400, 401, 403, 404, 429, 503];

/** An admin API operation: the admin credential, edgekbs's problems, and (unless said) every admin refusal. */
const adminOperation = (info: Pick<OperationInfo, "summary" | "ok"> & Partial<OperationInfo>): OperationInfo => ({ tag: "admin", caller: "admin", surface: "edgekbs", errors: ADMIN_ERRORS, ...info });

const OPERATIONS: Record<string, OperationInfo> = {
  "GET /healthz": { summary: "Liveness: the Worker runs", tag: "health", caller: "public", surface: "edgekbs", ok: { 200: { description: "alive", json: Liveness } }, errors: [] },
  "GET /readyz": {
    summary: "Readiness: the D1 schema is migrated and every setting and key loads",
    description: "Checks settings, d1-schema, master-key, admin-credentials, trust-anchors and token-signing-key; a 503 names each failing one (extension member `checks`).",
    tag: "health",
    caller: "public",
    surface: "edgekbs",
    ok: { 200: { description: "ready", json: Readiness } },
    errors: [503],
    problems: { 503: NotReady },
  },
  "GET /kbs/v0/openapi.json": { summary: "This document", tag: "meta", caller: "public", surface: "edgekbs", ok: { 200: { description: "OpenAPI 3.1", content: "application/json" } }, errors: [] },
  "GET /kbs/v0": { summary: "Always 401, as reference-kbs", tag: "reference-kbs", caller: "public", surface: "edgekbs", ok: {}, errors: [401] },
  "POST /kbs/v0/register_workload": {
    summary: "Register (or replace) a workload: launch measurement, TEE policy and passphrase",
    tag: "reference-kbs",
    caller: "admin",
    surface: "edgekbs",
    body: RegisterBody,
    ok: { 200: { description: "registered (empty body)" } },
    errors: [400, 401, 403, 409, 413, 415, 429, 503],
  },
  "POST /kbs/v0/auth": {
    summary: "Start a session: reference-kbs (kbs-types 0.2, SNP or SEV) or Trustee KBS protocol 0.4.0 (SNP)",
    description:
      "The protocols are told apart by extra-params: reference-kbs sends a JSON string, or an object naming a workload_id; Trustee an object without one. Sets the cookie session_id (reference-kbs) or kbs-session-id (Trustee).",
    tag: "reference-kbs",
    caller: "public",
    surface: "shared",
    body: AuthBody,
    ok: { 200: { description: "the challenge", json: AuthAnswer } },
    errors: [400, 401, 409, 413, 415, 429, 503],
  },
  "POST /kbs/v0/attest": {
    summary: "Answer the challenge with evidence",
    description: "reference-kbs (cookie session_id): 200 with an empty body. Trustee (cookie kbs-session-id): 200 with the attestation token.",
    tag: "reference-kbs",
    caller: "any-session",
    surface: "shared",
    body: z.union([LegacyAttestBody, TrusteeAttestBody]),
    ok: { 200: { description: "attested: an empty body (reference-kbs) or the token (Trustee)", json: TokenAnswer } },
    errors: [400, 401, 409, 413, 415, 429, 503],
  },
  "GET /kbs/v0/key/:key_id": {
    summary: "An attested reference-kbs session's secret",
    description: 'SNP: "<hex>", RSAES-PKCS1-v1_5 under the attested key; SEV: the LAUNCH_SECRET packet.',
    tag: "reference-kbs",
    caller: "legacy-session",
    surface: "edgekbs",
    params: { key_id: WorkloadId },
    ok: { 200: { description: "the secret, encrypted to the guest", content: "application/json" } },
    errors: [400, 401, 405, 429, 503],
  },
  "GET /kbs/v0/resource/:repository/:type/:tag": {
    summary: "A resource of the attested Trustee session's workload, as a flattened JSON JWE",
    tag: "trustee",
    caller: "trustee-session-or-token",
    surface: "trustee",
    ok: { 200: { description: "the JWE", content: "application/json" } },
    errors: [401, 404, 405, 429, 503],
  },
  "POST /kbs/v0/resource/:repository/:type/:tag": {
    summary: "Add a version of a resource (Trustee's admin API; kbs-client set-resource)",
    description: "The workload is ?workload_id=, else the repository segment. The body is the raw resource, 1 byte to 64 KiB.",
    tag: "trustee",
    caller: "admin",
    surface: "trustee",
    body: "bytes",
    query: { workload_id: WorkloadId },
    ok: { 200: { description: "stored (empty body)" } },
    errors: [401, 404, 409, 413, 429, 503],
  },
  "DELETE /kbs/v0/resource/:repository/:type/:tag": {
    summary: "Soft-delete every live version of a resource (Trustee's admin API)",
    tag: "trustee",
    caller: "admin",
    surface: "trustee",
    query: { workload_id: WorkloadId },
    ok: { 200: { description: "deleted (empty body)" } },
    errors: [401, 404, 409, 429, 503],
  },
  "GET /kbs/v0/.well-known/jwks.json": { summary: "The public key that verifies attestation tokens", tag: "trustee", caller: "public", surface: "trustee", ok: { 200: { description: "a JWKS", json: Jwks } }, errors: [503] },
  "GET /kbs/v0/admin/workloads": adminOperation({
    summary: "List workloads (a scoped credential sees those its scope covers)",
    query: Page.shape,
    ok: { 200: { description: "a page of workloads", json: WorkloadList } },
    errors: ADMIN_READ_ERRORS,
  }),
  "GET /kbs/v0/admin/workloads/:id": adminOperation({
    summary: "A workload and its secrets' metadata (never values)",
    ok: { 200: { description: "the workload", json: WorkloadDetail } },
    errors: ADMIN_READ_ERRORS,
  }),
  "PATCH /kbs/v0/admin/workloads/:id": adminOperation({
    summary: "Change a workload's measurement and/or policy (revokes its live sessions)",
    body: WorkloadChange,
    ok: { 200: { description: "the changed workload", json: WorkloadAnswer } },
  }),
  "DELETE /kbs/v0/admin/workloads/:id": adminOperation({ summary: "Soft-delete a workload (revokes its live sessions)", ok: { 204: { description: "deleted" } } }),
  "POST /kbs/v0/admin/workloads/:id/destroy": adminOperation({ summary: "Destroy a deleted workload with all its secrets", ok: { 204: { description: "destroyed" } } }),
  "PUT /kbs/v0/admin/workloads/:id/secrets/:key_id{.+}": adminOperation({
    summary: "Add a version of a secret",
    description: "A key id may hold up to three segments joined by / (a Trustee resource path), sent as is or as %2F.",
    body: SecretBody,
    ok: { 201: { description: "stored", json: SecretStored } },
  }),
  "DELETE /kbs/v0/admin/workloads/:id/secrets/:key_id{.+}": adminOperation({
    summary: "Soft-delete every live version of a secret, or one (?version=N)",
    query: { version: SecretVersion },
    ok: { 204: { description: "deleted" } },
  }),
  "POST /kbs/v0/admin/workloads/:id/secrets/:key_id{.+}/destroy": adminOperation({ summary: "Destroy a secret's deleted versions", ok: { 204: { description: "destroyed" } } }),
  "POST /kbs/v0/admin/rewrap": adminOperation({
    summary: "Re-wrap every data key under the active master key (unscoped credentials only)",
    ok: { 200: { description: "how many were re-wrapped", json: Rewrapped } },
  }),
  "GET /kbs/v0/admin/audit/heads": adminOperation({
    summary: "Every audit shard's head as the witness holds it (unscoped credentials only)",
    query: HeadsPage.shape,
    ok: { 200: { description: "a page of heads", json: AuditHeads } },
    errors: ADMIN_READ_ERRORS,
  }),
  "GET /kbs/v0/admin/audit": adminOperation({
    summary: "The exported audit rows in (shard, seq) order (unscoped credentials only)",
    query: AuditPage.shape,
    ok: { 200: { description: "a page of rows", json: AuditRows } },
    errors: ADMIN_READ_ERRORS,
  }),
  "POST /kbs/v0/admin/amd/certificates": adminOperation({
    summary: "Import AMD certificates and CRLs into the KBS caches (kbs amd import), so attestation needs no KDS",
    description:
      "A certificate is kept when it chains (ARK → ASK/ASVK → VCEK, issuers in the same request or cached) to AMD's pinned ARK or one listed in EXTRA_TRUSTED_ARKS for its product; a CRL when AMD's pinned ARK signed it and it is not stale. Each refused item is named with its reason. Unscoped credentials only.",
    body: AmdImportBody,
    ok: { 200: { description: "what was cached and what was refused", json: AmdImportAnswer } },
  }),
};

const REFUSALS: Record<number, string> = {
  400: "invalid request: the problem names the field or check",
  401: "unauthenticated, no valid session, or refused evidence",
  403: "the admin credential's scope does not cover this",
  404: "no such workload, secret or path",
  405: "this path takes another method (Allow names it)",
  409: "a conflicting state or a concurrent change; retry",
  413: "the body is too large",
  415: "the body's media type is not accepted",
  429: "rate-limited; Retry-After says when to retry",
  500: "a bug",
  503: "an upstream (AMD KDS) or configuration problem; Retry-After when transient",
};

const PROBLEM_SCHEMAS: Record<Surface, JsonSchema> = {
  edgekbs: { $ref: "#/components/schemas/Problem" },
  trustee: { $ref: "#/components/schemas/TrusteeProblem" },
  shared: { anyOf: [{ $ref: "#/components/schemas/Problem" }, { $ref: "#/components/schemas/TrusteeProblem" }] },
};

const SECURITY: Record<Caller, Record<string, string[]>[] | undefined> = {
  public: undefined,
  admin: [{ adminBearer: [] }],
  "legacy-session": [{ legacySession: [] }],
  "trustee-session": [{ trusteeSession: [] }],
  "trustee-session-or-token": [{ trusteeSession: [] }, { attestationToken: [] }],
  "any-session": [{ legacySession: [] }, { trusteeSession: [] }],
};

function parameter(name: string, where: "path" | "query", s: z.ZodMiniType): JsonSchema {
  return { name, in: where, ...(where === "path" && { required: true }), schema: request(s) };
}

function operation(method: string, path: string, info: OperationInfo): JsonSchema {
  const params = pathParameters(path).map((name) => parameter(name, "path", info.params?.[name] ?? PATH_PARAMETERS[name]!));
  params.push(...Object.entries(info.query ?? {}).map(([name, s]) => parameter(name, "query", s)));
  const responses: Record<string, JsonSchema> = {};
  for (const [status, ok] of Object.entries(info.ok)) {
    const content = ok.json ? { "application/json": { schema: answer(ok.json) } } : ok.content ? { [ok.content]: {} } : undefined;
    responses[status] = { description: ok.description, ...(content && { content }) };
  }
  for (const status of [...info.errors, 500]) {
    const problem = info.problems?.[status];
    responses[status] = { description: REFUSALS[status]!, content: { "application/problem+json": { schema: problem ? answer(problem) : PROBLEM_SCHEMAS[info.surface] } } };
  }
  const body = info.body === "bytes" ? { "application/octet-stream": {} } : info.body ? { "application/json": { schema: request(info.body) } } : undefined;
  const security = SECURITY[info.caller];
  return {
    operationId: `${method.toLowerCase()}${templatePath(path)
      .replace(/^\/kbs\/v0/, "")
      .split(/[^A-Za-z0-9]+/)
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join("")}`,
    summary: info.summary,
    ...(info.description && { description: info.description }),
    tags: [info.tag],
    ...(params.length > 0 && { parameters: params }),
    ...(body && { requestBody: { required: true, content: body } }),
    responses,
    ...(security && { security }),
  };
}

/** The document for these routes; throws when a route and OPERATIONS disagree (a bug the tests catch). */
export function openApiDocument(routes: readonly RouterRoute[]): JsonSchema {
  const ops = operations(routes);
  const keys = new Set(ops.map((o) => `${o.method} ${o.path}`));
  const undocumented = [...keys].filter((k) => !(k in OPERATIONS));
  const unrouted = Object.keys(OPERATIONS).filter((k) => !keys.has(k));
  if (undocumented.length + unrouted.length > 0) throw new Error(`OpenAPI: routes without an entry: ${undocumented.join(", ") || "none"}; entries without a route: ${unrouted.join(", ") || "none"}`);
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const { method, path } of ops) (paths[templatePath(path)] ??= {})[method.toLowerCase()] = operation(method, path, OPERATIONS[`${method} ${path}`]!);
  return {
    openapi: "3.1.0",
    info: {
      title: "edgekbs",
      version: "v0",
      description: "Key Broker Service for AMD SEV and SEV-SNP guests: the reference-kbs protocol (libkrun), the Trustee KBS protocol 0.4.0 (Confidential Containers), and an admin API.",
    },
    tags: [
      { name: "reference-kbs", description: "virtee/reference-kbs's wire format (kbs-types 0.2), as libkrun's clients speak it" },
      { name: "trustee", description: "Trustee KBS protocol 0.4.0; refusals in Trustee's error shape" },
      { name: "admin", description: "Authorization: Bearer <ADMIN_TOKEN or admin JWT>; every call is audited" },
      { name: "health", description: "Probes" },
      { name: "meta", description: "About the API" },
    ],
    paths,
    components: {
      schemas: {
        Problem: {
          type: "object",
          description: "RFC 9457; at most 200 bytes (libkrun's buffer)",
          properties: { type: { type: "string", pattern: "^urn:edgekbs:[a-z0-9-]+$" }, status: { type: "integer" }, detail: { type: "string" } },
          required: ["type", "status", "detail"],
        },
        TrusteeProblem: {
          type: "object",
          description: "Trustee's ErrorInformation",
          properties: { type: { type: "string", pattern: "^https://github\\.com/confidential-containers/kbs/errors/[A-Za-z]+$" }, detail: { type: "string" } },
          required: ["type", "detail"],
          additionalProperties: false,
        },
      },
      securitySchemes: {
        adminBearer: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN, or an admin JWT (EdDSA or ES256) signed by a key in ADMIN_JWT_PUBLIC_KEYS" },
        attestationToken: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "The Trustee attestation token /attest issued" },
        legacySession: { type: "apiKey", in: "cookie", name: "session_id" },
        trusteeSession: { type: "apiKey", in: "cookie", name: "kbs-session-id" },
      },
    },
  };
}
