/**
 * Client authentication (both client endpoints, docs/protocol.md): a JWT in `?token=` (or refreshed on a mux socket)
 * says which documents its holder may open and how. Tokens are verified with `jose`: HS256
 * against a shared secret, or EdDSA/RS256/ES256 against the public keys of a JWKS file. A
 * token must carry `exp`, and a `docs` claim mapping document globs to `rw` or `ro`:
 *
 *   { "sub": "ada", "exp": 1767225600, "docs": { "notes/**": "rw", "public/*": "ro" } }
 *
 * Without a token a client gets the `anonymous` access of the configuration (`none` refuses it).
 */
import fs from 'node:fs'
import { type JWTVerifyGetKey, createLocalJWKSet, errors, jwtVerify } from 'jose'
import { GlobError, MAX_GLOB_LENGTH, compileGlob } from '@georelay/core'

export type Access = 'none' | 'ro' | 'rw'

export interface AuthConfig {
  /** HS256 shared secret. */
  jwtSecret?: string | undefined
  /** A JWKS file with the public keys that sign tokens (EdDSA, RS256, ES256). */
  jwksFile?: string | undefined
  issuer?: string | undefined
  audience?: string | undefined
  /** What a client without a token may do. */
  anonymous: Access
}

/** What one authenticated client may do, until `expiresAt` (ms since the epoch; null: never). */
export interface Grants {
  readonly subject: string | null
  readonly expiresAt: number | null
  access(docName: string): Access
}

/** A token was missing, malformed, expired or badly signed: close with 4401 and these words. */
export class AuthError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
    this.name = 'AuthError'
  }
}

/** Most globs a token's `docs` claim may hold. */
export const MAX_TOKEN_GLOBS = 64

const everything = (access: Access): Grants => ({ subject: null, expiresAt: null, access: () => access })

/** Reads the `docs` claim: globs to `rw`/`ro`; a document matched by any `rw` glob is writable. */
const grantsOf = (claims: Record<string, unknown>, expiresAt: number): Grants => {
  const docs = claims.docs
  if (typeof docs !== 'object' || docs === null || Array.isArray(docs)) {
    throw new AuthError('ERR_TOKEN_CLAIMS', 'the token has no "docs" claim (an object mapping document globs to "rw" or "ro")')
  }
  const entries = Object.entries(docs as Record<string, unknown>)
  // Every document a client opens is matched against every glob: a token is input, so bound it.
  if (entries.length > MAX_TOKEN_GLOBS) throw new AuthError('ERR_TOKEN_CLAIMS', `the token's docs claim has ${entries.length} globs; at most ${MAX_TOKEN_GLOBS} are accepted`)
  const rules = entries.map(([glob, access]) => {
    if (access !== 'rw' && access !== 'ro') throw new AuthError('ERR_TOKEN_CLAIMS', `the token's docs claim gives "${glob.slice(0, 64)}" access ${JSON.stringify(access)}; use "rw" or "ro"`)
    try {
      return { pattern: compileGlob(glob), access: access as Access }
    } catch (err) {
      if (err instanceof GlobError) throw new AuthError('ERR_TOKEN_CLAIMS', `a glob of the token's docs claim is longer than ${MAX_GLOB_LENGTH} characters`)
      throw err
    }
  })
  return {
    subject: typeof claims.sub === 'string' ? claims.sub : null,
    expiresAt,
    access (docName) {
      let found: Access = 'none'
      for (const rule of rules) {
        if (!rule.pattern.test(docName)) continue
        if (rule.access === 'rw') return 'rw'
        found = 'ro'
      }
      return found
    },
  }
}

const describeJoseError = (err: unknown): AuthError => {
  if (err instanceof errors.JWTExpired) return new AuthError('ERR_TOKEN_EXPIRED', 'the token has expired: get a fresh one')
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey) return new AuthError('ERR_TOKEN_SIGNATURE', 'the token\'s signature does not verify with this relay\'s keys')
  if (err instanceof errors.JOSEAlgNotAllowed) return new AuthError('ERR_TOKEN_SIGNATURE', 'the token is signed with an algorithm this relay does not accept')
  if (err instanceof errors.JWTClaimValidationFailed) return new AuthError('ERR_TOKEN_CLAIMS', `the token's "${err.claim}" claim is ${err.reason === 'missing' ? 'missing' : 'not valid here'}`)
  if (err instanceof AuthError) return err
  return new AuthError('ERR_TOKEN_MALFORMED', 'the token is not a well-formed JWT')
}

export class Authenticator {
  private constructor (
    private readonly config: AuthConfig,
    private readonly key: Uint8Array | JWTVerifyGetKey | null,
    private readonly algorithms: string[],
  ) {}

  /** Reads the keys once; a JWKS file that cannot be read or parsed stops the relay at start. */
  static create (config: AuthConfig): Authenticator {
    if (config.jwtSecret !== undefined) return new Authenticator(config, new TextEncoder().encode(config.jwtSecret), ['HS256'])
    if (config.jwksFile !== undefined) {
      let jwks: unknown
      try {
        jwks = JSON.parse(fs.readFileSync(config.jwksFile, 'utf8'))
      } catch (err) {
        throw new Error(`auth.jwksFile: cannot read a JWKS from ${config.jwksFile} (${(err as Error).message})`)
      }
      return new Authenticator(config, createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]), ['EdDSA', 'RS256', 'ES256'])
    }
    return new Authenticator(config, null, [])
  }

  /** Anonymous access when no token is given (what `georelay cluster` and tests use: `rw`). */
  get anonymous (): Access {
    return this.config.anonymous
  }

  /** The grants of a token, or of an anonymous client when `token` is null; throws AuthError. */
  async verify (token: string | null): Promise<Grants> {
    if (token === null || token === '') {
      if (this.config.anonymous === 'none') throw new AuthError('ERR_TOKEN_MISSING', 'a token is required: connect with ?token=<JWT>')
      return everything(this.config.anonymous)
    }
    if (this.key === null) throw new AuthError('ERR_TOKEN_UNSUPPORTED', 'this relay accepts no tokens (no auth.jwtSecret or auth.jwksFile configured)')
    try {
      const options = {
        algorithms: this.algorithms,
        requiredClaims: ['exp'],
        ...(this.config.issuer === undefined ? {} : { issuer: this.config.issuer }),
        ...(this.config.audience === undefined ? {} : { audience: this.config.audience }),
      }
      const { payload } = typeof this.key === 'function'
        ? await jwtVerify(token, this.key, options)
        : await jwtVerify(token, this.key, options)
      return grantsOf(payload as Record<string, unknown>, (payload.exp as number) * 1000)
    } catch (err) {
      throw describeJoseError(err)
    }
  }
}

/** The token of an upgrade request: `?token=` in its URL. */
export const tokenOf = (url: string): string | null => {
  const query = url.indexOf('?')
  if (query === -1) return null
  return new URLSearchParams(url.slice(query + 1)).get('token')
}
