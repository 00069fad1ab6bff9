import type { Context } from "hono";
import { z } from "zod";
import { utf8 } from "../crypto/bytes";
import { fail } from "./problem";

export const WorkloadId = z.string().regex(/^[A-Za-z0-9._~:@+-]{1,128}$/, "1-128 characters from A-Z a-z 0-9 . _ ~ : @ + -");

/** SEV secrets are zero-padded into a 512-byte LAUNCH_SECRET slot; libkrun's guest reads at most 512. */
const MAX_SECRET_BYTES = 512;

export const SecretValue = z
  .string()
  .min(1, "must not be empty")
  .refine((p) => utf8(p).length <= MAX_SECRET_BYTES, `at most ${MAX_SECRET_BYTES} bytes`)
  // Both legacy guests read the passphrase as a C string: a NUL would silently truncate it.
  .refine((p) => !p.includes("\0"), "must not contain NUL characters");

function zodDetail(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join(".") || "body"}: ${i.message}`)
    .join("; ");
}

export function validate<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) fail(400, "body-invalid", `${what}: ${zodDetail(result.error)}`);
  return result.data;
}

/** Parses JSON and validates it; every failure is a 400 problem naming the field. */
export function parse<T extends z.ZodType>(schema: T, text: string, what: string): z.output<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail(400, "body-malformed", `${what} is not valid JSON`);
  }
  return validate(schema, value, what);
}

export async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.output<T>> {
  const type = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") fail(415, "unsupported-media-type", "send Content-Type: application/json");
  return parse(schema, await c.req.text(), "request body");
}

