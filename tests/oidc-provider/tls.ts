/**
 * Certificates for the mTLS tests (RFC 8705), made with `openssl` at test time in a
 * temporary directory that is removed before this returns: nothing with a private key
 * is committed or left on disk. P-256 keys throughout (fast to make).
 *
 * - `ca`: a CA that signs the server certificate and the PKI client certificates;
 * - `server`: 127.0.0.1 (subjectAltName IP:127.0.0.1), for the provider's mTLS alias and
 *   the API;
 * - `client`: `CN=mtls-client,O=Example` signed by the CA (tls_client_auth with
 *   tls_client_auth_subject_dn);
 * - `other`: `CN=other-client,O=Example`, also signed by the CA: a valid certificate
 *   that is not the one a token is bound to;
 * - `selfSigned`: `CN=self-signed-client` (self_signed_tls_client_auth, registered in the
 *   client's jwks by its `x5c`).
 *
 * Every private key's PEM is registered with the suite-wide secret scan.
 */
import { execFile } from 'node:child_process'
import { createHash, X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { registerSecret } from '../support/secret-registry.js'

const run = promisify(execFile)

export interface KeyAndCertificate {
  /** PEM, the private key. */
  readonly key: string
  /** PEM, the certificate (leaf only). */
  readonly cert: string
  /** The certificate parsed. */
  readonly x509: X509Certificate
  /** base64url(SHA-256(DER)): what `cnf["x5t#S256"]` (RFC 8705 §3.1) carries for it. */
  readonly thumbprint: string
  /** base64 DER, as a JWK's `x5c` entry carries it. */
  readonly x5c: string
}

export interface TestCertificates {
  /** PEM, the CA certificate: what both ends trust. */
  readonly ca: string
  readonly server: KeyAndCertificate
  readonly client: KeyAndCertificate
  readonly other: KeyAndCertificate
  readonly selfSigned: KeyAndCertificate
  /**
   * An RSA key with a self-signed certificate `CN=signing-credential`: a certificate
   * credential as Entra ID registers it, for private_key_jwt with `x5t#S256`.
   */
  readonly credential: KeyAndCertificate
  /** `tls_client_auth_subject_dn` for `client`, RFC 4514 order. */
  readonly clientSubjectDn: string
}

/** What `cnf["x5t#S256"]` holds for a certificate. */
export function certificateThumbprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('base64url')
}

/**
 * The RFC 4514 string form of a certificate's subject ("CN=a,O=b"): node prints the
 * RDNs one a line, in the certificate's order (most significant first).
 */
export function subjectDn(cert: X509Certificate): string {
  return cert.subject.split('\n').reverse().join(',')
}

const days = '2'
const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

async function openssl(dir: string, args: string[]): Promise<void> {
  // Bounded: openssl answers in milliseconds; a hang is a broken environment, not a test.
  await run('openssl', args, { cwd: dir, timeout: 10_000 })
}

async function load(dir: string, name: string): Promise<KeyAndCertificate> {
  const [key, cert] = await Promise.all([
    readFile(join(dir, `${name}.key`), 'utf8'),
    readFile(join(dir, `${name}.crt`), 'utf8'),
  ])
  registerSecret(key)
  const x509 = new X509Certificate(cert)
  return {
    key,
    cert,
    x509,
    thumbprint: certificateThumbprint(x509),
    x5c: x509.raw.toString('base64'),
  }
}

/** A key and a CSR, then the certificate signed by the CA. */
async function issue(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
): Promise<void> {
  await openssl(dir, [
    'req',
    '-new',
    ...curve,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  ])
  await writeFile(join(dir, `${name}.ext`), extensions)
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    days,
    '-sha256',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ])
}

/**
 * Makes a CA, a server certificate for 127.0.0.1, two client certificates, a self-signed
 * one and an RSA signing credential.
 */
export async function makeCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'undici-access-token-mtls-'))
  try {
    await openssl(dir, [
      'req',
      '-x509',
      ...curve,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      days,
      '-subj',
      '/O=Example/CN=Test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ])
    const clientExtensions =
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n'
    // The serial file is shared: issue one after another.
    await issue(
      dir,
      'server',
      '/O=Example/CN=127.0.0.1',
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n',
    )
    await issue(dir, 'client', '/O=Example/CN=mtls-client', clientExtensions)
    await issue(dir, 'other', '/O=Example/CN=other-client', clientExtensions)
    await openssl(dir, [
      'req',
      '-x509',
      ...curve,
      '-keyout',
      'self-signed.key',
      '-out',
      'self-signed.crt',
      '-days',
      days,
      '-subj',
      '/CN=self-signed-client',
      '-addext',
      'extendedKeyUsage=clientAuth',
    ])
    await openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'credential.key',
      '-out',
      'credential.crt',
      '-days',
      days,
      '-subj',
      '/CN=signing-credential',
    ])
    const [ca, server, client, other, selfSigned, credential] = await Promise.all([
      readFile(join(dir, 'ca.crt'), 'utf8'),
      load(dir, 'server'),
      load(dir, 'client'),
      load(dir, 'other'),
      load(dir, 'self-signed'),
      load(dir, 'credential'),
    ])
    registerSecret(await readFile(join(dir, 'ca.key'), 'utf8'))
    return {
      ca,
      server,
      client,
      other,
      selfSigned,
      credential,
      clientSubjectDn: subjectDn(client.x509),
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
