import type { Context, MiddlewareHandler } from "hono";
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { concat, utf8 } from "../crypto/bytes";
import type { Tee } from "../errors";
import { fail, problemResponse } from "./problem";

// zod/mini loads no locale: its English messages (as full zod gave) word the issues schemas leave unworded.
z.config(en());

/** A body of unknown length over the limit is read to its end (and dropped) up to this much, then cut off. */
const DRAIN_CAP_BYTES = 16 * 1024 * 1024;

/**
 * Limits request bodies. A declared Content-Length decides before any byte is read (413 above the limit).
 * A body of unknown length (chunked, HTTP/2 without a length) is counted as it is read; over the limit it is
 * read to its end before the 413, because answering with part of a body unread breaks wrangler dev's proxy
 * (the next request on the connection stalled, or got 503 or a reset; production's edge is unaffected, but
 * the limit must not depend on which one runs). Under the limit the handler gets the buffered bytes.
 */
export function bodyLimit(maxBytes: number): MiddlewareHandler {
  const tooLarge = (c: Context) => problemResponse(c, { status: 413, code: "body-too-large", detail: `request bodies are limited to ${maxBytes} bytes` });
  return async (c, next) => {
    const request = c.req.raw;
    if (request.body === null) return next();
    const declared = request.headers.get("content-length");
    // With Transfer-Encoding the chunks, not Content-Length, frame the body (RFC 9112 §6.3).
    if (declared !== null && !request.headers.has("transfer-encoding")) return Number(declared) > maxBytes ? tooLarge(c) : next();
    const reader = request.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      total += r.value.byteLength;
      if (total <= maxBytes) chunks.push(r.value);
      else if (total > DRAIN_CAP_BYTES) {
        await reader.cancel();
        break;
      }
    }
    if (total > maxBytes) return tooLarge(c);
    c.req.raw = new Request(request, { body: concat(...chunks) });
    return next();
  };
}

/** A launch measurement as reference-kbs registers it: hex of 32 bytes (SEV digest) or 48 (SNP MEASUREMENT). */
export const LaunchMeasurement = z.string().check(z.regex(/^(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{96})$/, "hex of 32 bytes (SEV launch digest) or 48 bytes (SNP MEASUREMENT)"));

/** The TEE a (validated) launch measurement is for: its length is the only hint reference-kbs's body gives. */
export function teeOfMeasurement(measurement: string): Tee {
  return measurement.length === 64 ? "sev" : "snp";
}

export const WorkloadId = z.string().check(
  z.regex(/^[A-Za-z0-9._~:@+-]{1,128}$/, "1-128 characters from A-Z a-z 0-9 . _ ~ : @ + -"),
  // URL normalisation turns the path segments "." and ".." into something else: such an id is unreachable.
  z.refine((id) => id !== "." && id !== "..", "must not be . or .."),
);

/**
 * A secret's key id: one WorkloadId-shaped segment, or up to three joined by "/" (a Trustee resource path
 * `repository/type/tag`), 128 characters in all. No segment is empty, "." or "..", which URL normalisation
 * would change, so every key id is reachable under its own path.
 */
export const KeyId = z.string().check(
  z.maxLength(128, "at most 128 characters"),
  z.refine((id) => {
    const segments = id.split("/");
    return segments.length <= 3 && segments.every((s) => WorkloadId.safeParse(s).success);
  }, "1-3 segments joined by /, each of A-Z a-z 0-9 . _ ~ : @ + - and not . or .."),
);

/** SEV secrets are zero-padded into a 512-byte LAUNCH_SECRET slot; libkrun's guest reads at most 512. */
const MAX_SECRET_BYTES = 512;

export const SecretValue = z.string().check(
  z.minLength(1, "must not be empty"),
  z.refine((p) => utf8(p).length <= MAX_SECRET_BYTES, `at most ${MAX_SECRET_BYTES} bytes`),
  // Both legacy guests read the passphrase as a C string: a NUL would silently truncate it.
  z.refine((p) => !p.includes("\0"), "must not contain NUL characters"),
);

/**
 * A Trustee resource is bytes (a LUKS key, a certificate, a registry credential, a policy file) released only
 * inside a JWE, never through SEV's 512-byte slot. 64 KiB holds any of those with room and keeps each release a
 * small D1 read; larger data belongs in storage the resource unlocks.
 */
const MAX_RESOURCE_BYTES = 64 * 1024;

/** The raw request body as a resource value, whatever its Content-Type: 1 to MAX_RESOURCE_BYTES bytes. */
export async function resourceBody(c: Context): Promise<Uint8Array> {
  const value = new Uint8Array(await c.req.arrayBuffer());
  if (value.length === 0) fail(400, "body-invalid", "the resource is empty");
  if (value.length > MAX_RESOURCE_BYTES) fail(413, "body-too-large", `resources are limited to ${MAX_RESOURCE_BYTES} bytes`);
  return value;
}

function zodDetail(error: z.core.$ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join(".") || "body"}: ${i.message}`)
    .join("; ");
}

export function validate<T extends z.ZodMiniType>(schema: T, value: unknown, what: string, code = "body-invalid"): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) fail(400, code, `${what}: ${zodDetail(result.error)}`);
  return result.data;
}

/** The key id of a Trustee resource path; a "/" decoded from %2F inside a segment makes more than three segments, which KeyId refuses. */
export function resourceKeyId(c: Context): string {
  const { repository, type, tag } = c.req.param() as { repository: string; type: string; tag: string };
  return validate(KeyId, `${repository}/${type}/${tag}`, "resource path");
}

/** The first string (key or value) that is not well-formed UTF-16: a lone surrogate from a "\\ud800" escape. */
function hasLoneSurrogate(value: unknown): boolean {
  // Iterative: a body nested thousands deep (well within the size limit) must not overflow the stack.
  const pending = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v === "string") {
      if (!v.isWellFormed()) return true;
    } else if (Array.isArray(v)) for (const item of v) pending.push(item);
    else if (v !== null && typeof v === "object") {
      for (const [k, item] of Object.entries(v)) {
        if (!k.isWellFormed()) return true;
        pending.push(item);
      }
    }
  }
  return false;
}

/**
 * Whether JSON.parse(text) can hold a lone surrogate: only if the text has one, or a \uD800–\uDFFF escape. Most
 * bodies have neither, and walking the SEV chain's ~11,500 array items for nothing cost ~1 ms in workerd.
 */
function mayHoldLoneSurrogate(text: string): boolean {
  return !text.isWellFormed() || /\\u[dD][89a-fA-F]/.test(text);
}

/**
 * Parses JSON and validates it; every failure is a 400 problem naming the field. A lone surrogate is
 * refused: stored as UTF-8 it would silently become U+FFFD, a different passphrase than the one sent.
 */
export function parse<T extends z.ZodMiniType>(schema: T, text: string, what: string): z.output<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail(400, "body-malformed", `${what} is not valid JSON`);
  }
  if (mayHoldLoneSurrogate(text) && hasLoneSurrogate(value)) fail(400, "body-malformed", `${what} holds a lone surrogate (\\ud800-\\udfff), which is not text`);
  return validate(schema, value, what);
}

const utf8Fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

export async function jsonBody<T extends z.ZodMiniType>(c: Context, schema: T): Promise<z.output<T>> {
  const type = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") fail(415, "unsupported-media-type", "send Content-Type: application/json");
  let text: string;
  try {
    // Invalid UTF-8 is refused rather than decoded to U+FFFD, which would alter a passphrase unnoticed.
    text = utf8Fatal.decode(await c.req.arrayBuffer());
  } catch {
    fail(400, "body-malformed", "the request body is not valid UTF-8");
  }
  return parse(schema, text, "request body");
}

