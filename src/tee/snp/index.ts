// Public API of the pure SEV-SNP verifier.

export * from "./types";
export { appraiseSnp, assertAppraised, parseSnpTeeConfig, type SnpPolicy } from "./appraise";
export { CERT_TABLE_GUIDS, certificatesFrom, parseCertTable, type CertTableEntry } from "./certtable";
export {
  decodeGuestPolicy,
  decodePlatformInfo,
  decodeTcb,
  parseReport,
  productFromCpuid,
  REPORT_SIZE,
  SIGNED_SIZE,
  SUPPORTED_VERSIONS,
  tcbHex,
} from "./report";
export { PINNED_ARKS, trustAnchors } from "./trust";
export { clearVerifierCaches, verifySnpReport } from "./verify";
export { fingerprint, parseCertificate, type AmdExtensions, type Certificate } from "./x509";
