// A synthetic AMD SEV-SNP "chip" for the tests and the demo: an ARK → ASK/ASVK → VCEK/VLEK chain shaped
// like AMD's and 1184-byte attestation reports signed by the VEK. Written from the format description
// (docs/snp-verification.md; § below names its sections), deliberately without importing the verifier,
// so the tests cross-check two independent readings of the format.
//
// WebCrypto + asn1js only (no node:*), so the same fixtures run in workerd and in Node. The ARK and
// the intermediate are RSA-2048 instead of AMD's RSA-4096 because 4096-bit keygen takes seconds.
// Cost in Node 20 on the dev VM: createSyntheticChip ≈ 250 ms median, 100–700 ms (the two RSA-2048
// keygens dominate and vary with the prime search), so share a chip per describe block where possible;
// createVekFor ≈ 6 ms; chip.report() ≈ 1 ms. Nothing is cached at module scope: chips sharing keys would
// let one chip's ARK vouch for another's chain.

import * as asn1js from "asn1js";
import { buf, concat, fromBase64, fromHex, isAllZero, reversed, toBase64, toHex, utf8 } from "../src/crypto/bytes";
import { toPem } from "../src/crypto/pem";
import type { FirmwareVersion, Product, SignerKind, Tcb } from "../src/tee/snp/types";

// ---------------------------------------------------------------------------------------------
// TCB_VERSION (§TCB_VERSION)

/** The SPLs of a TCB_VERSION; `fmc` exists only in the Turin layout. */
export type TcbParts = Omit<Tcb, "raw">;
/** A TCB given either as the raw little-endian u64 or as parts to encode for the chip's product. */
export type TcbInput = bigint | TcbParts;

type SplName = "bootloader" | "tee" | "snp" | "microcode" | "fmc";

/** Byte index (0 = least significant) of each SPL per layout. */
const TCB_LAYOUT: Record<"v0" | "v1", Partial<Record<SplName, number>>> = {
  v0: { bootloader: 0, tee: 1, snp: 6, microcode: 7 }, // Milan, Genoa
  v1: { fmc: 0, bootloader: 1, tee: 2, snp: 3, microcode: 7 }, // Turin
};

const layoutOf = (product: Product) => TCB_LAYOUT[product === "Turin" ? "v1" : "v0"];

export function encodeTcb(parts: TcbParts, product: Product): bigint {
  const layout = layoutOf(product);
  if (parts.fmc !== undefined && layout.fmc === undefined) {
    throw new RangeError(`${product} TCB has no FMC component`);
  }
  let raw = 0n;
  for (const [name, byte] of Object.entries(layout) as [SplName, number][]) {
    const v = parts[name] ?? 0;
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`TCB ${name} out of range: ${v}`);
    raw |= BigInt(v) << BigInt(byte * 8);
  }
  return raw;
}

export function decodeTcb(raw: bigint, product: Product): Tcb {
  const byteAt = (i: number) => Number((raw >> BigInt(i * 8)) & 0xffn);
  const layout = layoutOf(product);
  const tcb: Tcb = {
    raw: raw.toString(16).padStart(16, "0"),
    bootloader: byteAt(layout.bootloader!),
    tee: byteAt(layout.tee!),
    snp: byteAt(layout.snp!),
    microcode: byteAt(layout.microcode!),
  };
  if (layout.fmc !== undefined) tcb.fmc = byteAt(layout.fmc);
  return tcb;
}

function tcbToRaw(tcb: TcbInput, product: Product): bigint {
  return typeof tcb === "bigint" ? tcb : encodeTcb(tcb, product);
}

// ---------------------------------------------------------------------------------------------
// Per-product constants

const DEFAULT_TCB: Record<Product, TcbParts> = {
  // The §TCB_VERSION examples; Milan's microcode 219 ≥ 128 exercises the INTEGER leading-zero encoding.
  Milan: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
  Genoa: { bootloader: 10, tee: 0, snp: 23, microcode: 84 },
  Turin: { fmc: 0, bootloader: 1, tee: 0, snp: 2, microcode: 71 },
};

const CPUID: Record<Product, { family: number; model: number; stepping: number }> = {
  Milan: { family: 0x19, model: 0x01, stepping: 0x01 },
  Genoa: { family: 0x19, model: 0x11, stepping: 0x01 },
  Turin: { family: 0x1a, model: 0x02, stepping: 0x00 },
};

/** AMD's real serial numbers (§ARK, ASK and ASVK), so the synthetic chain looks like the real one in logs (and CRLs can name them). */
export const SERIALS: Record<Product, { ark: number; ask: number; asvk: number }> = {
  Milan: { ark: 0x10000, ask: 0x10001, asvk: 0x10101 },
  Genoa: { ark: 0x20000, ask: 0x20002, asvk: 0x20101 },
  Turin: { ark: 0x30000, ask: 0x30001, asvk: 0x30101 },
};

/** VCEKs say "Milan-B0" (every real Milan sample), "Genoa", "Turin"; VLEKs the bare product. */
const VCEK_PRODUCT_NAME: Record<Product, string> = { Milan: "Milan-B0", Genoa: "Genoa", Turin: "Turin" };

// ---------------------------------------------------------------------------------------------
// X.509 building blocks (asn1js directly, so every byte is under our control)

export const OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsassaPss: "1.2.840.113549.1.1.10",
  mgf1: "1.2.840.113549.1.1.8",
  sha384: "2.16.840.1.101.3.4.2.2",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  crlDistributionPoints: "2.5.29.31",
  crlNumber: "2.5.29.20",
  authorityKeyIdentifier: "2.5.29.35",
  amd: "1.3.6.1.4.1.3704.1",
} as const;

const explicit = (tagNumber: number, inner: asn1js.AsnType) =>
  new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value: [inner] });

const der = (node: asn1js.AsnType) => new Uint8Array(node.toBER(false));

/** RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48. AMD writes trailerField 1 in ARK/ASK but omits it in VEKs. */
function pssAlgorithm(withTrailerField: boolean): asn1js.Sequence {
  const sha384 = () => new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.sha384 }), new asn1js.Null()] });
  const params = [
    explicit(0, sha384()),
    explicit(1, new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.mgf1 }), sha384()] })),
    explicit(2, new asn1js.Integer({ value: 48 })),
  ];
  if (withTrailerField) params.push(explicit(3, new asn1js.Integer({ value: 1 })));
  return new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: OID.rsassaPss }), new asn1js.Sequence({ value: params })],
  });
}

/** A name attribute: a short type (a key of NAME_TYPES) or a dotted OID, and its text. */
export type NameAttribute = [type: string, value: string];

const NAME_TYPES: Record<string, string> = { OU: "2.5.4.11", C: "2.5.4.6", L: "2.5.4.7", ST: "2.5.4.8", O: "2.5.4.10", CN: "2.5.4.3" };

/** One RDN per attribute, UTF8String except the PrintableString country, as AMD writes them. */
function x509Name(attributes: NameAttribute[]): asn1js.Sequence {
  return new asn1js.Sequence({
    value: attributes.map(([type, text]) => {
      const value = type === "C" ? new asn1js.PrintableString({ value: text }) : new asn1js.Utf8String({ value: text });
      const atv = new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: NAME_TYPES[type] ?? type }), value] });
      return new asn1js.Set({ value: [atv] });
    }),
  });
}

/** AMD's name, in AMD's attribute order (§ARK, ASK and ASVK). */
const amdName = (cn: string) =>
  x509Name([["OU", "Engineering"], ["C", "US"], ["L", "Santa Clara"], ["ST", "CA"], ["O", "Advanced Micro Devices"], ["CN", cn]]);

/** RFC 5280: UTCTime through 2049, GeneralizedTime from 2050, whole seconds (DER allows no fraction). */
function x509Time(date: Date): asn1js.UTCTime | asn1js.GeneralizedTime {
  const valueDate = new Date(Math.floor(date.getTime() / 1000) * 1000);
  return valueDate.getUTCFullYear() < 2050 ? new asn1js.UTCTime({ valueDate }) : new asn1js.GeneralizedTime({ valueDate });
}

function extension(oid: string, value: Uint8Array, critical = false): asn1js.Sequence {
  const parts: asn1js.AsnType[] = [new asn1js.ObjectIdentifier({ value: oid })];
  if (critical) parts.push(new asn1js.Boolean({ value: true }));
  parts.push(new asn1js.OctetString({ valueHex: buf(value) }));
  return new asn1js.Sequence({ value: parts });
}

/**
 * keyUsage with these named bits set (RFC 5280 §4.2.1.3: 0 digitalSignature, 5 keyCertSign, 6 cRLSign).
 * DER drops trailing zero bits; AMD's ASK does not (03 02 01 04), hence `unusedBits`.
 */
export function keyUsageValue(bits: number[], unusedBits = 7 - (Math.max(...bits) & 7)): Uint8Array {
  const bytes = new Uint8Array((Math.max(...bits) >> 3) + 1);
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return der(new asn1js.BitString({ valueHex: buf(bytes), unusedBits }));
}

/** basicConstraints { cA, pathLenConstraint }; DER leaves a FALSE cA out. */
export function basicConstraintsValue(ca: boolean, pathLen?: number): Uint8Array {
  const fields: asn1js.AsnType[] = ca ? [new asn1js.Boolean({ value: true })] : [];
  if (pathLen !== undefined) fields.push(new asn1js.Integer({ value: pathLen }));
  return der(new asn1js.Sequence({ value: fields }));
}

const crlDp = (url: string) =>
  der(
    new asn1js.Sequence({
      value: [
        new asn1js.Sequence({
          value: [
            new asn1js.Constructed({
              idBlock: { tagClass: 3, tagNumber: 0 },
              value: [
                new asn1js.Constructed({
                  idBlock: { tagClass: 3, tagNumber: 0 },
                  value: [new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 6 }, valueHex: buf(utf8(url)) })],
                }),
              ],
            }),
          ],
        }),
      ],
    }),
  );

/** The exported SPKI with the algorithm forced to plain rsaEncryption, as in AMD's ARK/ASK (§ARK, ASK and ASVK). */
async function rsaSpki(publicKey: CryptoKey): Promise<Uint8Array> {
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", publicKey)) as ArrayBuffer);
  const parsed = asn1js.fromBER(buf(spki)).result as asn1js.Sequence;
  const bits = parsed.valueBlock.value[1]!;
  return der(
    new asn1js.Sequence({
      value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID.rsaEncryption }), new asn1js.Null()] }), bits],
    }),
  );
}

/** SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1). */
async function keyIdentifier(spki: Uint8Array): Promise<Uint8Array> {
  const parsed = asn1js.fromBER(buf(spki)).result as asn1js.Sequence;
  const bits = parsed.valueBlock.value[1] as asn1js.BitString;
  return new Uint8Array(await crypto.subtle.digest("SHA-1", buf(bits.valueBlock.valueHexView)));
}

interface CertSpec {
  serial: number | bigint;
  issuerCn: string;
  subjectCn: string;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: asn1js.Sequence[];
  /** ARK/ASK write trailerField; VEKs do not. */
  pssTrailerField: boolean;
  signerKey: CryptoKey;
}

async function buildCertificate(spec: CertSpec): Promise<Uint8Array> {
  const tbs = new asn1js.Sequence({
    value: [
      explicit(0, new asn1js.Integer({ value: 2 })),
      asn1js.Integer.fromBigInt(spec.serial),
      pssAlgorithm(spec.pssTrailerField),
      amdName(spec.issuerCn),
      new asn1js.Sequence({ value: [x509Time(spec.notBefore), x509Time(spec.notAfter)] }),
      amdName(spec.subjectCn),
      asn1js.fromBER(buf(spec.spki)).result,
      explicit(3, new asn1js.Sequence({ value: spec.extensions })),
    ],
  });
  const tbsDer = der(tbs);
  const signature = await crypto.subtle.sign({ name: "RSA-PSS", saltLength: 48 }, spec.signerKey, buf(tbsDer));
  return der(
    new asn1js.Sequence({
      value: [
        asn1js.fromBER(buf(tbsDer)).result,
        pssAlgorithm(spec.pssTrailerField),
        new asn1js.BitString({ valueHex: signature }),
      ],
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Re-issuing a certificate with deviations from AMD's shape, for tests of what a verifier must refuse.

/** An extension as reissue() hands it to an edit. */
export interface CertExtension {
  oid: string;
  critical: boolean;
  /** The extnValue contents. */
  value: Uint8Array;
}

/** What reissue() changes; every edit that is absent leaves that part byte for byte as it was. */
export interface CertEdits {
  /** The INTEGER inside [0] (2 = v3); null leaves the version field out, as in an X.509 v1 certificate. */
  version?: number | null;
  subject?: (attributes: NameAttribute[]) => NameAttribute[];
  issuer?: (attributes: NameAttribute[]) => NameAttribute[];
  /** A validity time written as this exact text under this tag, well-formed or not. */
  notBefore?: { type: "UTCTime" | "GeneralizedTime"; text: string };
  notAfter?: { type: "UTCTime" | "GeneralizedTime"; text: string };
  extensions?: (extensions: CertExtension[]) => CertExtension[];
  /** The DER elements after subjectPublicKeyInfo (normally just the [3] extensions), after `extensions` ran. */
  tbsTail?: (tail: Uint8Array[]) => Uint8Array[];
  /** DER AlgorithmIdentifier to name in both places instead of RSASSA-PSS (the signature stays RSASSA-PSS). */
  signatureAlgorithm?: Uint8Array;
  /** DER elements appended to the Certificate after signatureValue. */
  trailing?: Uint8Array[];
}

/** DER tag-length-value. */
function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Uint8Array.from([tag, ...length, ...content]);
}

/**
 * `cert` with `edits` applied to its TBSCertificate, signed again (RSASSA-PSS SHA-384 / salt 48) with
 * `signWith`: the chip's ARK key for an ARK or intermediate, its ASK key for a VEK. Parts left alone keep
 * their exact bytes, so only the edit differs from what createSyntheticChip issued.
 */
export async function reissue(cert: Uint8Array, signWith: CryptoKey, edits: CertEdits = {}): Promise<Uint8Array> {
  const children = (n: asn1js.AsnType) => (n as asn1js.Sequence).valueBlock.value;
  const bytes = (n: asn1js.AsnType) => new Uint8Array((n as asn1js.BaseBlock).valueBeforeDecodeView);
  const [tbs, algorithm] = children(asn1js.fromBER(buf(cert), { parseEmbedded: false }).result) as [asn1js.Sequence, asn1js.Sequence];
  const [version, serial, innerAlgorithm, issuer, validity, subject, spki, ...tail] = children(tbs);
  const name = (n: asn1js.AsnType, edit?: (a: NameAttribute[]) => NameAttribute[]) => {
    if (!edit) return bytes(n);
    const attributes = children(n).map((rdn) => {
      const [type, value] = children(children(rdn)[0]!) as [asn1js.ObjectIdentifier, asn1js.Utf8String];
      const oid = type.getValue();
      return [Object.keys(NAME_TYPES).find((k) => NAME_TYPES[k] === oid) ?? oid, value.valueBlock.value] as NameAttribute;
    });
    return der(x509Name(edit(attributes)));
  };
  const [notBefore, notAfter] = children(validity!);
  const time = (n: asn1js.AsnType, raw?: CertEdits["notBefore"]) => (raw ? tlv(raw.type === "UTCTime" ? 0x17 : 0x18, utf8(raw.text)) : bytes(n));
  let tailBytes: Uint8Array[] = tail.map(bytes);
  if (edits.extensions) {
    const listed = children(children(tail.find((n) => n.idBlock.tagClass === 3 && n.idBlock.tagNumber === 3)!)[0]!).map((e): CertExtension => {
      const parts = children(e);
      return {
        oid: (parts[0] as asn1js.ObjectIdentifier).getValue(),
        critical: parts.length === 3 && (parts[1] as asn1js.Boolean).valueBlock.value,
        value: new Uint8Array((parts[parts.length - 1] as asn1js.OctetString).valueBlock.valueHexView),
      };
    });
    const rebuilt = edits.extensions(listed).map((x) => der(extension(x.oid, x.value, x.critical)));
    tailBytes = [tlv(0xa3, tlv(0x30, concat(...rebuilt)))];
  }
  const versionBytes = edits.version === undefined ? [bytes(version!)] : edits.version === null ? [] : [der(explicit(0, new asn1js.Integer({ value: edits.version })))];
  const tbsDer = tlv(
    0x30,
    concat(
      ...versionBytes,
      bytes(serial!),
      edits.signatureAlgorithm ?? bytes(innerAlgorithm!),
      name(issuer!, edits.issuer),
      tlv(0x30, concat(time(notBefore!, edits.notBefore), time(notAfter!, edits.notAfter))),
      name(subject!, edits.subject),
      bytes(spki!),
      ...(edits.tbsTail ?? ((t) => t))(tailBytes),
    ),
  );
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "RSA-PSS", saltLength: 48 }, signWith, buf(tbsDer)));
  const signatureValue = tlv(0x03, concat(Uint8Array.of(0), signature));
  return tlv(0x30, concat(tbsDer, edits.signatureAlgorithm ?? bytes(algorithm), signatureValue, ...(edits.trailing ?? [])));
}

const RSA_PSS_GEN = {
  name: "RSA-PSS",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-384",
};

const DAY_MS = 86_400_000;
const addYears = (d: Date, years: number) => {
  const out = new Date(d);
  out.setUTCFullYear(out.getUTCFullYear() + years);
  return out;
};

/** Validity of a generated certificate; defaults: notBefore = now − 1 day, notAfter = now + 7 years (VEK). */
export interface Validity {
  notBefore?: Date;
  notAfter?: Date;
}

// ---------------------------------------------------------------------------------------------
// The chip

export interface SyntheticChip {
  product: Product;
  signer: SignerKind;
  arkDer: Uint8Array;
  /** The intermediate: ASK (`CN=SEV-<Product>`) for a VCEK chip, ASVK (`CN=SEV-VLEK-<Product>`) for VLEK. */
  askDer: Uint8Array;
  vekDer: Uint8Array;
  /** The ARK as PEM, e.g. for the EXTRA_TRUSTED_ARKS variable. */
  arkPem: string;
  /** 64 bytes; on Turin 8 significant bytes followed by 56 zeros. */
  chipId: Uint8Array;
  /** The TCB the VEK was issued for, decoded per the product's layout. */
  reportedTcb: Tcb;
  vekPrivateKey: CryptoKey;
  /** For signing further intermediates/VEKs (createVekFor) or a CRL (createCrl). */
  arkPrivateKey: CryptoKey;
  askPrivateKey: CryptoKey;
  /** VLEK chips: the csp_id extension value. */
  cspId?: string;
  /** A signed 1184-byte report; every field defaults to this chip's values. */
  report(fields?: Partial<ReportFields>): Promise<Uint8Array>;
}

export interface ChipOptions {
  product?: Product;
  reportedTcb?: TcbInput;
  /** The VEK's serial number; default 0, as in every real VCEK and VLEK (§VCEK and VLEK). */
  vekSerial?: number | bigint;
  /** 64 bytes (Turin: only the first 8 may be non-zero); default random. */
  chipId?: Uint8Array;
  vekKind?: SignerKind;
  /** VLEK only: the csp_id extension. */
  cspId?: string;
  vekValidity?: Validity;
}

export interface VekOptions {
  reportedTcb?: TcbInput;
  /** Default 0 (§VCEK and VLEK); a distinct serial lets a CRL revoke this VEK alone. */
  vekSerial?: number | bigint;
  chipId?: Uint8Array;
  vekValidity?: Validity;
}

function randomChipId(product: Product): Uint8Array {
  const id = new Uint8Array(64);
  crypto.getRandomValues(product === "Turin" ? id.subarray(0, 8) : id);
  return id;
}

function checkChipId(chipId: Uint8Array, product: Product): Uint8Array {
  if (chipId.length !== 64) throw new RangeError("CHIP_ID must be 64 bytes");
  if (product === "Turin" && !isAllZero(chipId.subarray(8))) {
    throw new RangeError("Turin CHIP_ID uses only its first 8 bytes");
  }
  return Uint8Array.from(chipId);
}

/** Everything needed to mint VEKs under one intermediate. */
type Authority = Pick<
  SyntheticChip,
  "product" | "signer" | "arkDer" | "askDer" | "arkPrivateKey" | "askPrivateKey" | "cspId"
>;

const intermediateCn = (product: Product, signer: SignerKind) =>
  signer === "VCEK" ? `SEV-${product}` : `SEV-VLEK-${product}`;

export async function createSyntheticChip(opts: ChipOptions = {}): Promise<SyntheticChip> {
  const product = opts.product ?? "Milan";
  const signer = opts.vekKind ?? "VCEK";
  const now = Date.now();
  const notBefore = new Date(now - DAY_MS);
  const notAfter = addYears(new Date(now), 20);
  const serials = SERIALS[product];
  const arkCn = `ARK-${product}`;
  const crlKind = signer === "VCEK" ? "vcek" : "vlek";

  const [ark, ask] = (await Promise.all([
    crypto.subtle.generateKey(RSA_PSS_GEN, true, ["sign", "verify"]),
    crypto.subtle.generateKey(RSA_PSS_GEN, true, ["sign", "verify"]),
  ])) as [CryptoKeyPair, CryptoKeyPair];
  const [arkSpki, askSpki] = await Promise.all([rsaSpki(ark.publicKey), rsaSpki(ask.publicKey)]);
  const [arkKid, askKid] = await Promise.all([keyIdentifier(arkSpki), keyIdentifier(askSpki)]);

  const arkDer = await buildCertificate({
    serial: serials.ark,
    issuerCn: arkCn,
    subjectCn: arkCn,
    notBefore,
    notAfter,
    spki: arkSpki,
    extensions: [
      // keyCertSign + cRLSign: BIT STRING 03 02 01 06, as AMD encodes it.
      extension(OID.keyUsage, keyUsageValue([5, 6]), true),
      extension(OID.subjectKeyIdentifier, der(new asn1js.OctetString({ valueHex: buf(arkKid) }))),
      extension(OID.basicConstraints, basicConstraintsValue(true), true),
      extension(OID.crlDistributionPoints, crlDp(`https://kdsintf.amd.com/vcek/v1/${product}/crl`)),
    ],
    pssTrailerField: true,
    signerKey: ark.privateKey,
  });

  const askDer = await buildCertificate({
    serial: signer === "VCEK" ? serials.ask : serials.asvk,
    issuerCn: arkCn,
    subjectCn: intermediateCn(product, signer),
    notBefore,
    notAfter,
    spki: askSpki,
    extensions: [
      extension(OID.subjectKeyIdentifier, der(new asn1js.OctetString({ valueHex: buf(askKid) }))),
      extension(
        OID.authorityKeyIdentifier,
        der(new asn1js.Sequence({ value: [new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: buf(arkKid) })] })),
      ),
      extension(OID.basicConstraints, basicConstraintsValue(true, 0), true),
      // keyCertSign only: 03 02 01 04, as AMD encodes it.
      extension(OID.keyUsage, keyUsageValue([5], 1), true),
      extension(OID.crlDistributionPoints, crlDp(`https://kdsintf.amd.com/${crlKind}/v1/${product}/crl`)),
    ],
    pssTrailerField: true,
    signerKey: ark.privateKey,
  });

  const authority: Authority = {
    product,
    signer,
    arkDer,
    askDer,
    arkPrivateKey: ark.privateKey,
    askPrivateKey: ask.privateKey,
    ...(signer === "VLEK" && { cspId: opts.cspId ?? "CN=synthetic-csp.example" }),
  };
  return mintVek(authority, {
    reportedTcb: tcbToRaw(opts.reportedTcb ?? DEFAULT_TCB[product], product),
    chipId: opts.chipId ? checkChipId(opts.chipId, product) : randomChipId(product),
    validity: opts.vekValidity,
    serial: opts.vekSerial,
  });
}

/**
 * Another VEK under the same ARK/ASK, returned as a sibling chip that signs its own reports. With
 * reportedTcb only: the same chip at another TCB; otherwise chipId defaults to a new random chip.
 */
export async function createVekFor(chip: SyntheticChip, opts: VekOptions = {}): Promise<SyntheticChip> {
  const product = chip.product;
  const chipId = opts.chipId
    ? checkChipId(opts.chipId, product)
    : opts.reportedTcb !== undefined
      ? chip.chipId
      : randomChipId(product);
  return mintVek(chip, {
    reportedTcb: tcbToRaw(opts.reportedTcb ?? BigInt(`0x${chip.reportedTcb.raw}`), product),
    chipId,
    validity: opts.vekValidity,
    serial: opts.vekSerial,
  });
}

async function mintVek(
  authority: Authority,
  vek: { reportedTcb: bigint; chipId: Uint8Array; validity?: Validity; serial?: number | bigint },
): Promise<SyntheticChip> {
  const { product, signer } = authority;
  const now = Date.now();
  const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer);
  const vekDer = await buildCertificate({
    serial: vek.serial ?? 0,
    issuerCn: intermediateCn(product, signer),
    subjectCn: signer === "VCEK" ? "SEV-VCEK" : "SEV-VLEK",
    notBefore: vek.validity?.notBefore ?? new Date(now - DAY_MS),
    notAfter: vek.validity?.notAfter ?? addYears(new Date(now), 7),
    spki,
    extensions: amdExtensions(authority, vek.reportedTcb, vek.chipId),
    pssTrailerField: false,
    signerKey: authority.askPrivateKey,
  });
  const reportedTcb = decodeTcb(vek.reportedTcb, product);
  const chip: SyntheticChip = {
    product,
    signer,
    arkDer: authority.arkDer,
    askDer: authority.askDer,
    vekDer,
    arkPem: toPem(authority.arkDer),
    chipId: vek.chipId,
    reportedTcb,
    vekPrivateKey: keys.privateKey,
    arkPrivateKey: authority.arkPrivateKey,
    askPrivateKey: authority.askPrivateKey,
    ...(authority.cspId !== undefined && { cspId: authority.cspId }),
    report: (fields = {}) => buildReport(chip, fields),
  };
  return chip;
}

/** AMD's VEK extensions (§AMD certificate extensions), in the order real certificates list them. */
function amdExtensions(authority: Authority, reportedTcb: bigint, chipId: Uint8Array): asn1js.Sequence[] {
  const { product, signer } = authority;
  const int = (arc: string, v: number) => extension(`${OID.amd}.${arc}`, der(new asn1js.Integer({ value: v })));
  const tcb = decodeTcb(reportedTcb, product);
  const turin = product === "Turin";
  const exts = [
    int("1", turin ? 1 : 0),
    extension(
      `${OID.amd}.2`,
      der(new asn1js.IA5String({ value: signer === "VCEK" ? VCEK_PRODUCT_NAME[product] : product })),
    ),
  ];
  if (turin) {
    // Turin's reserved TCB bytes have no known mapping to spl_5..7; real Turin certs carry 0.
    exts.push(int("3.9", tcb.fmc!), int("3.1", tcb.bootloader), int("3.2", tcb.tee), int("3.3", tcb.snp));
    exts.push(int("3.5", 0), int("3.6", 0), int("3.7", 0));
  } else {
    // Milan/Genoa: spl_4..spl_7 are TCB bytes 2..5 (go-sev-guest compares all 8 bytes).
    const reservedByte = (i: number) => Number((reportedTcb >> BigInt(i * 8)) & 0xffn);
    exts.push(int("3.1", tcb.bootloader), int("3.2", tcb.tee));
    exts.push(int("3.4", reservedByte(2)), int("3.5", reservedByte(3)), int("3.6", reservedByte(4)), int("3.7", reservedByte(5)));
    exts.push(int("3.3", tcb.snp));
  }
  exts.push(int("3.8", tcb.microcode));
  if (signer === "VCEK") {
    // hwID is the raw CHIP_ID inside extnValue, no inner tag.
    exts.push(extension(`${OID.amd}.4`, turin ? chipId.subarray(0, 8) : chipId));
  } else {
    exts.push(extension(`${OID.amd}.5`, der(new asn1js.IA5String({ value: authority.cspId! }))));
  }
  return exts;
}

// ---------------------------------------------------------------------------------------------
// CRL (§CRL)

export interface CrlOptions {
  /** Serial numbers listed as revoked; default none. */
  revokedSerials?: (number | bigint)[];
  /** Default now − 1 day. */
  thisUpdate?: Date;
  /** Default thisUpdate + 7 days; null leaves the (optional) field out. */
  nextUpdate?: Date | null;
  /** Default `ARK-<Product>`, the chip's ARK and so the issuer a verifier expects. */
  issuerCn?: string;
  /** Default the chip's ARK private key. */
  signWith?: CryptoKey;
}

/** A DER X.509 v2 CRL as the ARK issues one: RSASSA-PSS SHA-384 / salt 48 and a CRL number extension. */
export async function createCrl(chip: Pick<SyntheticChip, "product" | "arkPrivateKey">, opts: CrlOptions = {}): Promise<Uint8Array> {
  const thisUpdate = opts.thisUpdate ?? new Date(Date.now() - DAY_MS);
  const nextUpdate = opts.nextUpdate === undefined ? new Date(thisUpdate.getTime() + 7 * DAY_MS) : opts.nextUpdate;
  const fields: asn1js.AsnType[] = [
    new asn1js.Integer({ value: 1 }), // v2
    pssAlgorithm(true),
    amdName(opts.issuerCn ?? `ARK-${chip.product}`),
    x509Time(thisUpdate),
  ];
  if (nextUpdate) fields.push(x509Time(nextUpdate));
  const revoked = opts.revokedSerials ?? [];
  if (revoked.length) {
    const entry = (serial: number | bigint) => new asn1js.Sequence({ value: [asn1js.Integer.fromBigInt(serial), x509Time(thisUpdate)] });
    fields.push(new asn1js.Sequence({ value: revoked.map(entry) }));
  }
  fields.push(explicit(0, new asn1js.Sequence({ value: [extension(OID.crlNumber, der(new asn1js.Integer({ value: 1 })))] })));
  const tbsDer = der(new asn1js.Sequence({ value: fields }));
  const signature = await crypto.subtle.sign({ name: "RSA-PSS", saltLength: 48 }, opts.signWith ?? chip.arkPrivateKey, buf(tbsDer));
  return der(
    new asn1js.Sequence({
      value: [asn1js.fromBER(buf(tbsDer)).result, pssAlgorithm(true), new asn1js.BitString({ valueHex: signature })],
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// ATTESTATION_REPORT (§Report layout)

export const REPORT_SIZE = 0x4a0;
/** The signature covers bytes [0, SIGNED_LENGTH). */
export const SIGNED_LENGTH = 0x2a0;

/** Field offsets, for tests that mutate one field. */
export const REPORT_OFFSETS = {
  version: 0x000,
  guestSvn: 0x004,
  policy: 0x008,
  familyId: 0x010,
  imageId: 0x020,
  vmpl: 0x030,
  signatureAlgo: 0x034,
  currentTcb: 0x038,
  platformInfo: 0x040,
  signerInfo: 0x048,
  reportData: 0x050,
  measurement: 0x090,
  hostData: 0x0c0,
  idKeyDigest: 0x0e0,
  authorKeyDigest: 0x110,
  reportId: 0x140,
  reportIdMa: 0x160,
  reportedTcb: 0x180,
  cpuidFamily: 0x188,
  cpuidModel: 0x189,
  cpuidStepping: 0x18a,
  chipId: 0x1a0,
  committedTcb: 0x1e0,
  currentVersion: 0x1e8,
  committedVersion: 0x1ec,
  launchTcb: 0x1f0,
  launchMitVector: 0x1f8,
  currentMitVector: 0x200,
  signatureR: 0x2a0,
  signatureS: 0x2e8,
} as const;

export interface ReportFields {
  /** Default 3. */
  version: number;
  guestSvn: number;
  /** Default 0x30000 (reserved bit 17 + SMT allowed, ABI 0.0). */
  policy: bigint;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  /** Default 1 (ECDSA P-384/SHA-384). */
  signatureAlgo: number;
  platformInfo: bigint;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  /** Default 0 for a VCEK chip, 1 for a VLEK chip. */
  signingKey: number;
  /** Byte fields shorter than the report field are zero-padded at the end; longer ones throw. */
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  /** Default random. */
  reportId: Uint8Array;
  /** Default all 0xFF (no migration agent). */
  reportIdMa: Uint8Array;
  /** The four TCBs default to the chip's reported TCB. */
  currentTcb: TcbInput;
  reportedTcb: TcbInput;
  committedTcb: TcbInput;
  launchTcb: TcbInput;
  /** Written by default for version ≥ 3 with the product's values; given explicitly it is written for any version. */
  cpuid: { family: number; model: number; stepping: number };
  chipId: Uint8Array;
  /** Default 1.55.40 for both. */
  currentVersion: FirmwareVersion;
  committedVersion: FirmwareVersion;
  /** Default 0; written as given whatever the version. */
  launchMitVector: bigint;
  currentMitVector: bigint;
  /** Key that signs the report; default the chip's VEK; null leaves the signature area zero. */
  signWith: CryptoKey | null;
}

const FIRMWARE: FirmwareVersion = { major: 1, minor: 55, build: 40 };

async function buildReport(chip: SyntheticChip, f: Partial<ReportFields>): Promise<Uint8Array> {
  const { product } = chip;
  const r = new Uint8Array(REPORT_SIZE);
  const v = new DataView(r.buffer);
  const O = REPORT_OFFSETS;
  const u32 = (off: number, n: number) => v.setUint32(off, n, true);
  const u64 = (off: number, n: bigint) => {
    if (n < 0n || n >= 1n << 64n) throw new RangeError(`u64 out of range: ${n}`);
    v.setBigUint64(off, n, true);
  };
  const bytes = (off: number, size: number, value: Uint8Array | undefined) => {
    if (!value) return;
    if (value.length > size) throw new RangeError(`field at 0x${off.toString(16)} holds ${size} bytes, got ${value.length}`);
    r.set(value, off);
  };
  const tcb = (off: number, value: TcbInput | undefined) =>
    u64(off, value === undefined ? BigInt(`0x${chip.reportedTcb.raw}`) : tcbToRaw(value, product));
  const firmware = (off: number, fw: FirmwareVersion) => r.set([fw.build, fw.minor, fw.major], off);

  const version = f.version ?? 3;
  u32(O.version, version);
  u32(O.guestSvn, f.guestSvn ?? 0);
  u64(O.policy, f.policy ?? 0x30000n);
  bytes(O.familyId, 16, f.familyId);
  bytes(O.imageId, 16, f.imageId);
  u32(O.vmpl, f.vmpl ?? 0);
  u32(O.signatureAlgo, f.signatureAlgo ?? 1);
  tcb(O.currentTcb, f.currentTcb);
  u64(O.platformInfo, f.platformInfo ?? 0n);
  const signingKey = f.signingKey ?? (chip.signer === "VCEK" ? 0 : 1);
  u32(O.signerInfo, (f.authorKeyEn ? 1 : 0) | (f.maskChipKey ? 2 : 0) | (signingKey << 2));
  bytes(O.reportData, 64, f.reportData);
  bytes(O.measurement, 48, f.measurement);
  bytes(O.hostData, 32, f.hostData);
  bytes(O.idKeyDigest, 48, f.idKeyDigest);
  bytes(O.authorKeyDigest, 48, f.authorKeyDigest);
  bytes(O.reportId, 32, f.reportId ?? crypto.getRandomValues(new Uint8Array(32)));
  bytes(O.reportIdMa, 32, f.reportIdMa ?? new Uint8Array(32).fill(0xff));
  tcb(O.reportedTcb, f.reportedTcb);
  const cpuid = f.cpuid ?? (version >= 3 ? CPUID[product] : undefined);
  if (cpuid) r.set([cpuid.family, cpuid.model, cpuid.stepping], O.cpuidFamily);
  bytes(O.chipId, 64, f.chipId ?? chip.chipId);
  tcb(O.committedTcb, f.committedTcb);
  firmware(O.currentVersion, f.currentVersion ?? FIRMWARE);
  firmware(O.committedVersion, f.committedVersion ?? FIRMWARE);
  tcb(O.launchTcb, f.launchTcb);
  u64(O.launchMitVector, f.launchMitVector ?? 0n);
  u64(O.currentMitVector, f.currentMitVector ?? 0n);

  const key = f.signWith === undefined ? chip.vekPrivateKey : f.signWith;
  return key ? signReport(r, key) : r;
}

/** A copy of the report with [0x2A0, 0x4A0) replaced by an ECDSA P-384/SHA-384 signature over [0, 0x2A0). */
export async function signReport(report: Uint8Array, privateKey: CryptoKey): Promise<Uint8Array> {
  if (report.length !== REPORT_SIZE) throw new RangeError(`report must be ${REPORT_SIZE} bytes`);
  const p1363 = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-384" }, privateKey, buf(report.subarray(0, SIGNED_LENGTH))),
  );
  const out = Uint8Array.from(report);
  out.fill(0, SIGNED_LENGTH);
  // r and s are big-endian in P1363; AMD stores each little-endian in a 72-byte field.
  out.set(reversed(p1363.subarray(0, 48)), REPORT_OFFSETS.signatureR);
  out.set(reversed(p1363.subarray(48, 96)), REPORT_OFFSETS.signatureS);
  return out;
}

/**
 * A copy of the report with byte `offset` XORed with `xor`. Without `resign` the signature no longer
 * matches (if the byte is signed); with `resign` (a chip or anything holding vekPrivateKey) the report
 * is re-signed, giving a validly signed but semantically altered report.
 */
export async function mutateReport(
  report: Uint8Array,
  offset: number,
  xor = 1,
  resign?: { vekPrivateKey: CryptoKey },
): Promise<Uint8Array> {
  if (!Number.isInteger(offset) || offset < 0 || offset >= report.length) throw new RangeError(`offset ${offset} outside the report`);
  const out = Uint8Array.from(report);
  out[offset]! ^= xor;
  return resign ? signReport(out, resign.vekPrivateKey) : out;
}

/** The KDS hwid of a chip: CHIP_ID (64 bytes), or its first 8 bytes on Turin. */
export function hwidOf(chip: Pick<SyntheticChip, "product" | "chipId">): Uint8Array {
  return chip.product === "Turin" ? chip.chipId.subarray(0, 8) : chip.chipId;
}

/** ASK (or ASVK) then ARK as PEM, the body of KDS's cert_chain. */
export function certChainPem(chip: Pick<SyntheticChip, "askDer" | "arkDer">): string {
  return toPem(chip.askDer) + toPem(chip.arkDer);
}

/** Both DER chain certificates plus the VEK, as a verifier receives them with evidence. */
export function certificatesOf(chip: SyntheticChip): Uint8Array[] {
  return [chip.vekDer, chip.askDer, chip.arkDer];
}

// ---------------------------------------------------------------------------------------------
// Transfer: vitest.config.ts (Node) makes the chips whose ARKs go into EXTRA_TRUSTED_ARKS, and the
// workerd tests rebuild them from this JSON-safe form (bindings cannot carry CryptoKeys).

export interface ChipTransfer {
  product: Product;
  signer: SignerKind;
  arkDer: string;
  askDer: string;
  vekDer: string;
  chipId: string;
  reportedTcb: string;
  cspId?: string;
  keys: { ark: JsonWebKey; ask: JsonWebKey; vek: JsonWebKey };
}

export async function exportChip(chip: SyntheticChip): Promise<ChipTransfer> {
  const jwk = (k: CryptoKey) => crypto.subtle.exportKey("jwk", k) as Promise<JsonWebKey>;
  const [ark, ask, vek] = await Promise.all([jwk(chip.arkPrivateKey), jwk(chip.askPrivateKey), jwk(chip.vekPrivateKey)]);
  return {
    product: chip.product,
    signer: chip.signer,
    arkDer: toBase64(chip.arkDer),
    askDer: toBase64(chip.askDer),
    vekDer: toBase64(chip.vekDer),
    chipId: toHex(chip.chipId),
    reportedTcb: chip.reportedTcb.raw,
    ...(chip.cspId !== undefined && { cspId: chip.cspId }),
    keys: { ark, ask, vek },
  };
}

export async function importChip(t: ChipTransfer): Promise<SyntheticChip> {
  const rsa = (k: JsonWebKey) => crypto.subtle.importKey("jwk", k, RSA_PSS_GEN, true, ["sign"]);
  const [arkPrivateKey, askPrivateKey, vekPrivateKey] = await Promise.all([
    rsa(t.keys.ark),
    rsa(t.keys.ask),
    crypto.subtle.importKey("jwk", t.keys.vek, { name: "ECDSA", namedCurve: "P-384" }, true, ["sign"]),
  ]);
  const arkDer = fromBase64(t.arkDer);
  const chip: SyntheticChip = {
    product: t.product,
    signer: t.signer,
    arkDer,
    askDer: fromBase64(t.askDer),
    vekDer: fromBase64(t.vekDer),
    arkPem: toPem(arkDer),
    chipId: fromHex(t.chipId),
    reportedTcb: decodeTcb(BigInt(`0x${t.reportedTcb}`), t.product),
    vekPrivateKey,
    arkPrivateKey,
    askPrivateKey,
    ...(t.cspId !== undefined && { cspId: t.cspId }),
    report: (fields = {}) => buildReport(chip, fields),
  };
  return chip;
}
