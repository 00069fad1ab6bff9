// Trustee's admin resource API, as its `kbs-client config set-resource` calls it:
// POST (raw bytes) and DELETE /kbs/v0/resource/{repository}/{type}/{tag}, 200 with an empty body.
//
// A resource is a secret of one workload under the key id `repository/type/tag`, stored and deleted through
// the admin API's own functions, so its versions, soft delete, destroy, rewrap and audit rows are the admin
// API's. Which workload: `?workload_id=`, else the repository segment names it (kbs-client sends no query).

import { Hono, type Context } from "hono";
import { requireAdmin, requireWorkload, type AdminEnv } from "./admin-auth";
import { addSecretVersion, softDeleteSecret } from "./admin";
import { resourceBody, resourceKeyId, validate, WorkloadId } from "./body";
import { fail } from "./problem";
import { trusteeSurface } from "./trustee-errors";

export const trusteeAdmin = new Hono<AdminEnv>({ strict: false });

const PATH = "/resource/:repository/:type/:tag";

/** The resource's key id and the workload it is bound to, within the caller's scope. */
function binding(c: Context<AdminEnv>): { workloadId: string; keyId: string } {
  const keyId = resourceKeyId(c);
  const workloadId = validate(WorkloadId, c.req.query("workload_id") ?? c.req.param("repository"), "workload_id");
  requireWorkload(c, workloadId);
  return { workloadId, keyId };
}

// Trustee reports a failed resource write as PluginInternalError (the app marks /resource/* PolicyDeny, a read's).
const writeErrors = trusteeSurface("PluginInternalError");

trusteeAdmin.post(PATH, writeErrors, requireAdmin, async (c) => {
  const { workloadId, keyId } = binding(c);
  const value = await resourceBody(c);
  // Trustee's guests attest with SNP evidence here; a SEV workload could never be released the resource.
  await addSecretVersion(c, workloadId, keyId, value, (w) => {
    if (w.tee !== "snp") fail(400, "workload-tee-mismatch", `workload "${workloadId}" is ${w.tee}; resources are for SNP workloads`);
  });
  return c.body(null, 200);
});

trusteeAdmin.delete(PATH, writeErrors, requireAdmin, async (c) => {
  const { workloadId, keyId } = binding(c);
  await softDeleteSecret(c, workloadId, keyId);
  return c.body(null, 200);
});
