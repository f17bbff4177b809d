import { afterAll, describe, expect, it } from '@jest/globals'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  applyOverrides, ConfigError, type ConfigProblem, dataDirOf, loadRelayConfig, overridesFromEnv, parseRelayConfig,
} from '@georelay/relay'

/** A mesh secret of the shortest accepted length. */
const S32 = 's'.repeat(32)

/** Every limit's default but maxMessageBytes, which follows maxDocumentBytes. */
const DEFAULT_LIMITS = {
  maxDocsPerConnection: 256,
  maxConnections: 10_000,
  maxDocumentBytes: 64 * 1024 * 1024,
  messagesPerSecond: { rate: 1000, burst: 5000 },
  messagesPerSecondPerAddress: { rate: 0, burst: 0 },
  maxBufferedBytes: 8 * 1024 * 1024,
  maxReceivingBytes: 256 * 1024 * 1024,
  throttledCloseAfterMs: 30_000,
  presence: { perClient: 4, perDocument: 1000, stateBytes: 16 * 1024 },
}

/** The problems a ConfigError carries; fails the test if anything else (or nothing) is thrown. */
const problemsOf = (fn: () => unknown): ConfigProblem[] => {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).problems
  }
  throw new Error('expected a ConfigError, but the configuration was accepted')
}

const errorOf = (fn: () => unknown): ConfigError => {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError, but the configuration was accepted')
}

const problemAt = (fn: () => unknown, at: string): ConfigProblem => {
  const problems = problemsOf(fn)
  const found = problems.find(p => p.path === at)
  if (found === undefined) throw new Error(`no problem at "${at}"; got ${JSON.stringify(problems)}`)
  return found
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-config-'))
const writeFile = (name: string, text: string): string => {
  const file = path.join(tmp, name)
  fs.writeFileSync(file, text)
  return file
}

afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }) })

describe('parseRelayConfig', () => {
  it('fills in every default from a region alone', () => {
    expect(parseRelayConfig({ region: 'eu-west' })).toEqual({
      region: 'eu-west',
      listen: { host: '127.0.0.1', port: 4001 },
      store: 'sqlite',
      peers: [],
      previousMeshSecrets: [],
      auth: { anonymous: 'none' },
      namespaces: [],
      webhooks: [],
      // One update as large as a document may be fits in a message, with room for its framing.
      limits: { maxMessageBytes: 64 * 1024 * 1024 + 64 * 1024, ...DEFAULT_LIMITS },
      storage: { compactAfterUpdates: 500, compactAfterBytes: 1024 * 1024, synchronous: 'full', postgres: { schema: 'georelay', poolSize: 10, statementTimeoutMs: 10_000 } },
      replication: { batchWindowMs: 5, heartbeatMs: 1000, linkTimeoutMs: 3000, compress: true, erasureWaitMs: 2000 },
      fanoutWindowMs: 0,
      idleReleaseMs: 30_000,
      http: { regions: 'discovery', allowOrigins: ['*'] },
      redis: { pollMs: 1000, cluster: false },
    })
  })

  it('makes maxMessageBytes follow maxDocumentBytes unless it is given', () => {
    expect(parseRelayConfig({ region: 'a', limits: { maxDocumentBytes: 1024 * 1024 } }).limits.maxMessageBytes).toBe(1024 * 1024 + 64 * 1024)
    expect(parseRelayConfig({ region: 'a', limits: { maxMessageBytes: 4096 } }).limits.maxMessageBytes).toBe(4096)
  })

  it('refuses a mesh secret shorter than 32 bytes, and reads one from a file', () => {
    expect(problemAt(() => parseRelayConfig({ region: 'a', meshSecret: 'short' }), 'meshSecret').message).toMatch(/at least 32 bytes/)
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-secret-')), 'secret')
    fs.writeFileSync(file, `${S32}\n`)
    expect(parseRelayConfig({ region: 'a', meshSecretFile: file }).meshSecret).toBe(S32)
    fs.writeFileSync(file, 'short\n')
    expect(problemAt(() => parseRelayConfig({ region: 'a', meshSecretFile: file }), 'meshSecretFile').message).toMatch(/shorter than 32 bytes/)
    expect(problemAt(() => parseRelayConfig({ region: 'a', meshSecretFile: `${file}.missing` }), 'meshSecretFile').message).toMatch(/cannot read/)
  })

  it('reads the token secret from GEORELAY_JWT_SECRET or a file, and refuses both at once', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'georelay-jwt-')), 'jwt')
    fs.writeFileSync(file, `${S32}\n`)
    expect(parseRelayConfig({ region: 'a', auth: { jwtSecretFile: file } }).auth.jwtSecret).toBe(S32)
    const fromEnv = loadRelayConfig({ flags: {}, env: { GEORELAY_REGION: 'a', GEORELAY_JWT_SECRET: S32 } })
    expect(fromEnv.auth.jwtSecret).toBe(S32)
    expect(loadRelayConfig({ flags: { 'jwt-secret-file': file }, env: { GEORELAY_REGION: 'a' } }).auth.jwtSecret).toBe(S32)
    expect(problemAt(() => parseRelayConfig({ region: 'a', auth: { jwtSecret: S32, jwtSecretFile: file } }), 'auth.jwtSecretFile').message).toMatch(/not both/)
    fs.writeFileSync(file, 'short\n')
    expect(problemAt(() => parseRelayConfig({ region: 'a', auth: { jwtSecretFile: file } }), 'auth.jwtSecretFile').message).toMatch(/shorter than 32 bytes/)
  })

  it('reports every problem of a file at once, with a "did you mean" for a misspelt field', () => {
    const err = (() => {
      try {
        parseRelayConfig({
          region: 'eu-west',
          meshSecret: S32,
          peers: [{ region: 'us-east', url: 'ws://127.0.0.1:4002' }],
          auth: { jwtSecret: 'too-short' },
          limits: { maxMesageBytes: 4096 },
          namespaces: [{ match: 'eu/**', regions: ['eu-wset'] }, { match: '**' }, { match: 'late/**' }],
        })
      } catch (e) { return e as ConfigError }
      throw new Error('the configuration was accepted')
    })()
    const byPath = Object.fromEntries(err.problems.map(p => [p.path, p.message]))
    expect(byPath['auth.jwtSecret']).toMatch(/at least 32 characters/)
    expect(byPath['limits.maxMesageBytes']).toMatch(/unknown field; did you mean "maxMessageBytes"\? \(the relay README, "Configuration file", lists every field\)/)
    expect(byPath['namespaces.0.regions.0']).toMatch(/unknown region "eu-wset" \(regions: eu-west, us-east\) \(regions are this relay's and its peers'\)/)
    // The hint about region names goes with region problems only.
    expect(byPath['namespaces.2.match']).toMatch(/never applies/)
    expect(byPath['namespaces.2.match']).not.toMatch(/regions are/)
  })

  it('fills in defaults inside a partly given section', () => {
    const config = parseRelayConfig({ region: 'eu-west', listen: { port: 0 }, limits: { maxMessageBytes: 4096 } })
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 0 })
    expect(config.limits).toEqual({ maxMessageBytes: 4096, ...DEFAULT_LIMITS })
  })

  it('keeps what a full file gives', () => {
    const input = {
      region: 'us-east',
      listen: { host: '0.0.0.0', port: 5001 },
      publicUrl: 'wss://us-east.example.com',
      dataDir: '/var/lib/georelay',
      store: 'memory' as const,
      peers: [{ region: 'eu-west', url: 'ws://10.0.0.2:4001' }],
      meshSecret: S32,
      previousMeshSecrets: ['p'.repeat(32)],
      auth: { jwtSecret: 'x'.repeat(32), issuer: 'https://id.example.com', audience: 'georelay', anonymous: 'none' as const },
      namespaces: [{ match: 'eu/**', regions: ['eu-west'] }],
      limits: {
        maxMessageBytes: 2048,
        maxDocsPerConnection: 8,
        maxConnections: 3,
        maxDocumentBytes: 4096,
        messagesPerSecond: { rate: 0, burst: 0 },
        messagesPerSecondPerAddress: { rate: 50, burst: 100 },
        maxBufferedBytes: 65536,
        maxReceivingBytes: 2 * 1024 * 1024,
        throttledCloseAfterMs: 500,
        presence: { perClient: 1, perDocument: 10, stateBytes: 100 },
      },
      storage: {
        compactAfterUpdates: 10, compactAfterBytes: 4096, synchronous: 'normal' as const,
        postgres: { url: 'postgres://u:p@127.0.0.1:5432/db', schema: 'georelay_eu', poolSize: 3, statementTimeoutMs: 500 },
      },
      replication: { batchWindowMs: 0, heartbeatMs: 100, linkTimeoutMs: 500, compress: false, erasureWaitMs: 500 },
      fanoutWindowMs: 0,
      idleReleaseMs: 0,
      http: { regions: 'full' as const, allowOrigins: ['https://app.example.com'], adminToken: 't'.repeat(32) },
      node: 'us-east-1',
      redis: { pollMs: 500, cluster: false },
      webhooks: [{ url: 'https://hooks.example/georelay', events: ['delete'], debounceMs: 500, maxWaitMs: 5000, secret: 'a-webhook-secret-of-at-least-32-bytes!' }],
    }
    expect(parseRelayConfig(input)).toEqual(input)
  })

  it('refuses a missing region', () => {
    expect(problemAt(() => parseRelayConfig({}), 'region').message).toMatch(/required/i)
  })

  it.each([
    ['region', 'with spaces and capitals', { region: 'EU West' }, /lowercase letters, digits and dashes/],
    ['listen.port', 'that is text', { region: 'x', listen: { port: 'abc' } }, /expected number, received string/i],
    ['listen.port', 'above 65535', { region: 'x', listen: { port: 70000 } }, /less than or equal to 65535/],
    ['listen.port', 'that is a fraction', { region: 'x', listen: { port: 1.5 } }, /integer/],
    ['listen.host', 'that is empty', { region: 'x', listen: { host: '' } }, /at least 1/],
    ['publicUrl', 'that is http', { region: 'x', publicUrl: 'http://example.com' }, /ws:\/\/ or wss:\/\/ URL/],
    ['store', 'that does not exist', { region: 'x', store: 'mongodb' }, /'sqlite' \| 'postgres' \| 'memory'/],
    ['peers.0.url', 'that is https', { region: 'x', meshSecret: S32, peers: [{ region: 'y', url: 'https://y.example.com' }] }, /ws:\/\/ or wss:\/\/ URL/],
    ['peers.1.region', 'that is no region name', { region: 'x', meshSecret: S32, peers: [{ region: 'y', url: 'ws://y' }, { region: 'Z!', url: 'ws://z' }] }, /lowercase/],
    ['limits.maxMessageBytes', 'below 1 KiB', { region: 'x', limits: { maxMessageBytes: 10 } }, /greater than or equal to 1024/],
    ['limits.maxDocsPerConnection', 'of zero', { region: 'x', limits: { maxDocsPerConnection: 0 } }, /greater than or equal to 1/],
    ['limits.messagesPerSecond', 'a rate without a burst', { region: 'x', limits: { messagesPerSecond: { rate: 5, burst: 0 } } }, /a burst of at least 1/],
    ['storage.compactAfterUpdates', 'that is negative', { region: 'x', storage: { compactAfterUpdates: -1 } }, /greater than or equal to 1/],
    ['idleReleaseMs', 'written as "30s"', { region: 'x', idleReleaseMs: '30s' }, /expected number/i],
  ])('refuses %s %s, with its path and what is wrong', (at, _what, input, message) => {
    expect(problemAt(() => parseRelayConfig(input), at).message).toMatch(message)
  })

  it('lists every problem at once, and names each in the error message', () => {
    const err = errorOf(() => parseRelayConfig({ region: 'Bad Name', listen: { port: -1 }, limits: { maxMessageBytes: 1 } }, 'relay.json'))
    expect(err.problems.map(p => p.path).sort()).toEqual(['limits.maxMessageBytes', 'listen.port', 'region'])
    expect(err.message).toContain('relay.json')
    expect(err.message).toMatch(/^ {2}listen\.port: .*greater than or equal to 0/m)
    expect(err.message).toMatch(/^ {2}region: .*lowercase/m)
  })

  it('refuses unknown fields at the top and inside sections, instead of ignoring a typo', () => {
    const problems = problemsOf(() => parseRelayConfig({ region: 'x', regoin: 'y', listen: { prot: 4001 } }))
    expect(problems).toEqual(expect.arrayContaining([
      { path: 'regoin', message: expect.stringMatching(/unknown field/) },
      { path: 'listen.prot', message: expect.stringMatching(/unknown field/) },
    ]))
  })

  it('checks auth: a short HS256 secret, both kinds of keys at once, an unknown anonymous level', () => {
    expect(problemsOf(() => parseRelayConfig({ region: 'x', auth: { jwtSecret: 'k' } }))).toEqual([{ path: 'auth.jwtSecret', message: expect.stringMatching(/at least 32 characters/) }])
    expect(problemsOf(() => parseRelayConfig({ region: 'x', auth: { jwtSecret: 'x'.repeat(32), jwksFile: 'keys.json' } }))).toEqual([{ path: 'auth', message: expect.stringMatching(/either jwtSecret .* or jwksFile/) }])
    expect(problemAt(() => parseRelayConfig({ region: 'x', auth: { anonymous: 'write' } }), 'auth.anonymous').message).toMatch(/none/)
  })

  describe('namespaces', () => {
    const mesh = { region: 'eu-west', meshSecret: S32, peers: [{ region: 'us-east', url: 'ws://127.0.0.1:4002' }, { region: 'eu-central', url: 'ws://127.0.0.1:4003' }] }

    it('accepts the rules of the design', () => {
      const config = parseRelayConfig({
        ...mesh,
        namespaces: [
          { match: 'eu/*', regions: ['eu-west', 'eu-central'] },
          { match: 'billing/*', mode: 'active-passive', primary: 'us-east', standby: ['eu-west'], promoteAfterMs: 2000 },
          { match: '*', mode: 'active-active' },
        ],
      })
      expect(config.namespaces).toHaveLength(3)
    })

    it('names each bad rule with its path: unknown region, primary outside the allowed set, a rule that never applies', () => {
      const problems = problemsOf(() => parseRelayConfig({
        ...mesh,
        namespaces: [
          { match: 'eu/*', regions: ['eu-west', 'eu-north'] },
          { match: 'billing/*', mode: 'active-passive', primary: 'us-east', regions: ['eu-west'] },
          { match: '**' },
          { match: 'late/*' },
        ],
      }))
      expect(problems).toEqual([
        { path: 'namespaces.0.regions.1', message: expect.stringMatching(/unknown region "eu-north"/) },
        { path: 'namespaces.1.primary', message: expect.stringMatching(/not among the allowed regions/) },
        { path: 'namespaces.3.match', message: expect.stringMatching(/never applies: rule 2/) },
      ])
    })

    it('checks field types with the schema', () => {
      expect(problemAt(() => parseRelayConfig({ ...mesh, namespaces: [{ match: 'a/*', mode: 'primary-only' }] }), 'namespaces.0.mode').message).toMatch(/active-active/)
    })
  })

  it('does not mistake a nested "auth" for the design field', () => {
    expect(problemAt(() => parseRelayConfig({ region: 'x', limits: { auth: 1 } }), 'limits.auth').message).toMatch(/unknown field/)
  })

  describe('peers (the region mesh)', () => {
    const peer = { region: 'us-east', url: 'ws://127.0.0.1:4002' }

    it('accepts peers with a mesh secret', () => {
      expect(parseRelayConfig({ region: 'eu-west', peers: [peer], meshSecret: S32 }).peers).toEqual([peer])
    })

    it('refuses peers without a mesh secret, since links would be unauthenticated', () => {
      expect(problemAt(() => parseRelayConfig({ region: 'eu-west', peers: [peer] }), 'meshSecret').message).toMatch(/no meshSecret/)
    })

    it('refuses this relay\'s own region and a region listed twice', () => {
      expect(problemAt(() => parseRelayConfig({ region: 'us-east', peers: [peer], meshSecret: S32 }), 'peers.0.region').message)
        .toMatch(/this relay's own region/)
      expect(problemAt(() => parseRelayConfig({ region: 'eu-west', peers: [peer, peer], meshSecret: S32 }), 'peers.1.region').message)
        .toMatch(/listed twice/)
    })

    it('refuses a link timeout no longer than the heartbeat', () => {
      expect(problemAt(() => parseRelayConfig({ region: 'x', replication: { heartbeatMs: 1000, linkTimeoutMs: 1000 } }), 'replication.linkTimeoutMs').message)
        .toMatch(/longer than replication\.heartbeatMs/)
    })
  })
})

describe('overrides from flags and the environment', () => {
  it('reads GEORELAY_* variables, ignoring empty ones', () => {
    expect(overridesFromEnv({
      GEORELAY_REGION: 'eu-west',
      GEORELAY_HOST: '0.0.0.0',
      GEORELAY_PORT: '5000',
      GEORELAY_DATA: '/data',
      GEORELAY_STORE: 'memory',
      GEORELAY_PUBLIC_URL: 'wss://eu.example.com',
      GEORELAY_MESH_SECRET: S32,
      GEORELAY_PEERS: ' us-east=ws://a:1, ap-south=ws://b:2 ,',
      GEORELAY_CONFIG: 'ignored-here.json',
      HOME: '/root',
    })).toEqual({
      region: 'eu-west',
      host: '0.0.0.0',
      port: '5000',
      data: '/data',
      store: 'memory',
      'public-url': 'wss://eu.example.com',
      'mesh-secret': S32,
      peer: ['us-east=ws://a:1', 'ap-south=ws://b:2'],
    })
    expect(overridesFromEnv({ GEORELAY_REGION: '', GEORELAY_PEERS: '' })).toEqual({})
  })

  it('takes a peer region as several node URLs, in a flag and in GEORELAY_PEERS', () => {
    const peers = (o: Parameters<typeof applyOverrides>[1]) => (applyOverrides({}, o).peers as unknown[])
    expect(peers({ peer: ['us-east=ws://n1:1,ws://n2:1', 'ap=ws://c:3'] })).toEqual([
      { region: 'us-east', url: 'ws://n1:1', urls: ['ws://n2:1'] },
      { region: 'ap', url: 'ws://c:3' },
    ])
    // In the variable the same commas separate peers and a peer's URLs: REGION= starts a peer.
    expect(overridesFromEnv({ GEORELAY_PEERS: 'us-east=ws://n1:1, ws://n2:1,ap=ws://c:3' }).peer)
      .toEqual(['us-east=ws://n1:1,ws://n2:1', 'ap=ws://c:3'])
    const config = parseRelayConfig(applyOverrides({ region: 'eu', meshSecret: S32 }, { peer: ['us-east=ws://n1:1,ws://n2:1'] }))
    expect(config.peers).toEqual([{ region: 'us-east', url: 'ws://n1:1', urls: ['ws://n2:1'] }])
    expect(problemAt(() => parseRelayConfig({ region: 'eu', meshSecret: S32, peers: [{ region: 'us', url: 'ws://a:1', urls: ['http://b'] }] }), 'peers.0.urls.0').message)
      .toMatch(/ws/)
  })

  it('maps flag names onto configuration fields without touching the base', () => {
    const base = { region: 'a', listen: { host: 'h', port: 1 }, limits: { maxMessageBytes: 2048 } }
    const frozen = JSON.stringify(base)
    const out = applyOverrides(base, { port: '2', data: 'd', store: 'memory', 'public-url': 'ws://p', 'mesh-secret': 'm', peer: ['b=ws://b:1'] })
    expect(out).toEqual({
      region: 'a',
      listen: { host: 'h', port: 2 },
      limits: { maxMessageBytes: 2048 },
      dataDir: 'd',
      store: 'memory',
      publicUrl: 'ws://p',
      meshSecret: 'm',
      peers: [{ region: 'b', url: 'ws://b:1' }],
    })
    expect(JSON.stringify(base)).toBe(frozen)
  })

  it('--anonymous and GEORELAY_ANONYMOUS set auth.anonymous and keep the file\'s keys', () => {
    const base = { region: 'a', auth: { jwtSecret: 'x'.repeat(32), anonymous: 'none' } }
    expect(applyOverrides(base, { anonymous: 'ro' })).toEqual({ region: 'a', auth: { jwtSecret: 'x'.repeat(32), anonymous: 'ro' } })
    expect(overridesFromEnv({ GEORELAY_ANONYMOUS: 'rw' })).toEqual({ anonymous: 'rw' })
    expect(applyOverrides({ region: 'a', storage: { compactAfterUpdates: 3 } }, { synchronous: 'normal' })).toEqual({ region: 'a', storage: { compactAfterUpdates: 3, synchronous: 'normal' } })
    expect(overridesFromEnv({ GEORELAY_SYNCHRONOUS: 'normal' })).toEqual({ synchronous: 'normal' })
    expect(problemAt(() => parseRelayConfig(applyOverrides({ region: 'a' }, { anonymous: 'yes' })), 'auth.anonymous').message).toMatch(/'none' \| 'ro' \| 'rw'/)
  })

  it('keeps a non-numeric port as text, so the schema reports it at listen.port', () => {
    expect(applyOverrides({}, { port: 'abc' })).toEqual({ listen: { port: 'abc' } })
    expect(problemAt(() => loadRelayConfig({ flags: { region: 'x', port: 'abc' }, env: {} }), 'listen.port').message).toMatch(/expected number/i)
  })

  it('splits a peer at the first "=", so URLs may hold "="', () => {
    expect(applyOverrides({}, { peer: ['us-east=ws://h:1/?a=b'] }).peers).toEqual([{ region: 'us-east', url: 'ws://h:1/?a=b' }])
  })

  it.each(['us-east', '=ws://h:1', ''])('refuses --peer %j, which is not REGION=URL', text => {
    const problem = problemAt(() => applyOverrides({}, { peer: [text] }), 'peers')
    expect(problem.message).toMatch(/is not REGION=URL\[,URL\.\.\.\], like us-east=ws:\/\/127\.0\.0\.1:4002/)
  })
})

describe('loadRelayConfig', () => {
  const fileConfig = {
    region: 'from-file',
    listen: { host: '127.0.0.2', port: 1111 },
    dataDir: 'file-data',
    store: 'memory',
    idleReleaseMs: 5,
  }

  it('layers the file, then the environment, then flags', () => {
    const file = writeFile('layers.json', JSON.stringify(fileConfig))
    const config = loadRelayConfig({
      file,
      env: { GEORELAY_REGION: 'from-env', GEORELAY_PORT: '2222', GEORELAY_DATA: 'env-data' },
      flags: { port: '3333' },
    })
    expect(config.region).toBe('from-env') // env beats the file
    expect(config.listen).toEqual({ host: '127.0.0.2', port: 3333 }) // flag beats env; the file's host stays
    expect(config.dataDir).toBe('env-data')
    expect(config.store).toBe('memory') // only the file says
    expect(config.idleReleaseMs).toBe(5)
  })

  it('takes the file from GEORELAY_CONFIG when no --config is given, and --config wins over it', () => {
    const fromEnv = writeFile('env.json', JSON.stringify({ region: 'named-by-env' }))
    const fromFlag = writeFile('flag.json', JSON.stringify({ region: 'named-by-flag' }))
    expect(loadRelayConfig({ env: { GEORELAY_CONFIG: fromEnv }, flags: {} }).region).toBe('named-by-env')
    expect(loadRelayConfig({ file: fromFlag, env: { GEORELAY_CONFIG: fromEnv }, flags: {} }).region).toBe('named-by-flag')
  })

  it('works with no file at all', () => {
    expect(loadRelayConfig({ env: {}, flags: { region: 'solo', port: '0' } }).listen).toEqual({ host: '127.0.0.1', port: 0 })
  })

  it('names every layer as the source of a bad merged configuration', () => {
    const file = writeFile('typo.json', JSON.stringify({ region: 'x', lisen: { port: 1 } }))
    const err = errorOf(() => loadRelayConfig({ file, env: {}, flags: {} }))
    expect(err.problems).toEqual([{ path: 'lisen', message: expect.stringMatching(/unknown field/) }])
    expect(err.source).toBe(`${file} + environment + flags`)
    expect(err.message).toContain('lisen: unknown field')
  })

  it('refuses a file that is not JSON, naming it', () => {
    const file = writeFile('broken.json', '{ "region": "x", }')
    const err = errorOf(() => loadRelayConfig({ file, env: {}, flags: {} }))
    expect(err.source).toBe(file)
    expect(err.problems).toEqual([{ path: '', message: expect.stringContaining(`${file} is not valid JSON`) }])
    expect(err.message).toContain('(root)')
  })

  it('refuses a missing file, naming it', () => {
    const file = path.join(tmp, 'does-not-exist.json')
    const err = errorOf(() => loadRelayConfig({ file, env: {}, flags: {} }))
    expect(err.problems).toEqual([{ path: '', message: expect.stringMatching(new RegExp(`^cannot read ${file.replace(/[.\\/]/g, '\\$&')}: .*ENOENT`)) }])
  })

  it.each([['an array', '[]'], ['a string', '"eu-west"'], ['null', 'null']])('refuses a file holding %s', (_what, text) => {
    const file = writeFile('not-object.json', text)
    expect(problemsOf(() => loadRelayConfig({ file, env: {}, flags: {} }))).toEqual([{ path: '', message: 'the configuration must be a JSON object' }])
  })

  it('refuses a --peer flag without "=" even when the file is fine', () => {
    const file = writeFile('ok.json', JSON.stringify({ region: 'x' }))
    expect(problemAt(() => loadRelayConfig({ file, env: {}, flags: { peer: ['us-east'] } }), 'peers').message).toMatch(/not REGION=URL/)
  })
})

describe('the Postgres store', () => {
  const URL = 'postgres://georelay:s3cret-pw@db.internal:5432/georelay'

  it('is named by --postgres-url or GEORELAY_POSTGRES_URL, the flag winning, keeping the file\'s other postgres fields', () => {
    const base = { region: 'eu-west', store: 'postgres', storage: { postgres: { poolSize: 4 } } }
    const fromEnv = applyOverrides(base, overridesFromEnv({ GEORELAY_POSTGRES_URL: URL }))
    expect(parseRelayConfig(fromEnv).storage.postgres).toEqual({ url: URL, schema: 'georelay', poolSize: 4, statementTimeoutMs: 10_000 })
    const flagged = applyOverrides(fromEnv, { 'postgres-url': 'postgres://other@127.0.0.1/x' })
    expect(parseRelayConfig(flagged).storage.postgres.url).toBe('postgres://other@127.0.0.1/x')
  })

  it('needs a URL, says where to give one, and refuses what is not a postgres:// URL or a schema name', () => {
    expect(problemAt(() => parseRelayConfig({ region: 'eu-west', store: 'postgres' }), 'storage.postgres.url').message).toMatch(/GEORELAY_POSTGRES_URL/)
    expect(problemAt(() => parseRelayConfig({ region: 'eu-west', store: 'postgres', storage: { postgres: { url: 'mysql://x@y/z' } } }), 'storage.postgres.url').message).toMatch(/postgres:\/\/ URL/)
    expect(problemAt(() => parseRelayConfig({ region: 'eu-west', store: 'postgres', storage: { postgres: { url: URL, schema: 'Bad-Name' } } }), 'storage.postgres.schema').message).toMatch(/SQL identifier/)
  })

  it('never repeats the URL (or its password) in a configuration error', () => {
    const err = errorOf(() => parseRelayConfig({ region: 'eu-west', store: 'postgres', storage: { postgres: { url: URL, poolSize: 0 } } }))
    expect(err.problems.map(p => p.path)).toEqual(['storage.postgres.poolSize'])
    expect(err.message).not.toContain('s3cret-pw')
  })
})

describe('a region of several nodes', () => {
  const PG = { store: 'postgres', storage: { postgres: { url: 'postgres://u@127.0.0.1/db' } } }
  const REDIS = 'redis://:hunter2-secret@127.0.0.1:6379'

  it('takes --node and --redis-url, or GEORELAY_NODE and GEORELAY_REDIS_URL, keeping the file\'s other redis fields', () => {
    const base = { region: 'eu-west', ...PG, redis: { pollMs: 300 } }
    const fromEnv = parseRelayConfig(applyOverrides(base, overridesFromEnv({ GEORELAY_NODE: 'eu-west-1', GEORELAY_REDIS_URL: REDIS })))
    expect(fromEnv).toMatchObject({ node: 'eu-west-1', redis: { url: REDIS, pollMs: 300 } })
    const flagged = parseRelayConfig(applyOverrides(base, { node: 'eu-west-2', 'redis-url': 'redis://127.0.0.1:7000' }))
    expect(flagged).toMatchObject({ node: 'eu-west-2', redis: { url: 'redis://127.0.0.1:7000', pollMs: 300 } })
  })

  it('refuses Redis without the shared Postgres store, and a named node on Postgres without Redis', () => {
    expect(problemAt(() => parseRelayConfig({ region: 'eu-west', redis: { url: REDIS } }), 'redis.url').message)
      .toMatch(/store is sqlite: set store postgres/)
    expect(problemAt(() => parseRelayConfig({ region: 'eu-west', node: 'a1', ...PG }), 'redis.url').message)
      .toMatch(/node "a1" is one of several nodes of region eu-west.*GEORELAY_REDIS_URL/)
    // One relay on Postgres alone names no node and needs no Redis.
    expect(parseRelayConfig({ region: 'eu-west', ...PG }).redis.url).toBeUndefined()
  })

  it('refuses what is not a node name or a redis:// URL; takes peers for a region of nodes', () => {
    expect(problemAt(() => parseRelayConfig({ region: 'eu-west', ...PG, node: 'a b' }), 'node').message).toMatch(/letters, digits/)
    expect(problemAt(() => parseRelayConfig({ region: 'eu-west', ...PG, redis: { url: 'http://x' } }), 'redis.url').message).toMatch(/redis:\/\/ URL/)
    const withPeers = { region: 'eu-west', ...PG, redis: { url: REDIS }, meshSecret: 's'.repeat(32), peers: [{ region: 'us-east', url: 'ws://127.0.0.1:4002' }] }
    // The region is one peer to the mesh: the node holding the mesh lease dials them.
    expect(parseRelayConfig(withPeers).peers.map(p => p.region)).toEqual(['us-east'])
    // Not yet with writers that each node would judge from its own links.
    const activePassive = { ...withPeers, namespaces: [{ match: 'ledger/**', mode: 'active-passive', primary: 'eu-west', standby: ['us-east'] }] }
    expect(problemAt(() => parseRelayConfig(activePassive), 'namespaces').message).toMatch(/active-passive namespaces are not supported yet in a region of several nodes/)
  })

  it('takes --redis-cluster or GEORELAY_REDIS_CLUSTER, keeping the other redis fields, and refuses what is not a yes or no', () => {
    const base = { region: 'eu-west', ...PG, redis: { pollMs: 300 } }
    const fromEnv = parseRelayConfig(applyOverrides(base, overridesFromEnv({ GEORELAY_REDIS_URL: REDIS, GEORELAY_REDIS_CLUSTER: 'true' })))
    expect(fromEnv.redis).toMatchObject({ url: REDIS, cluster: true, pollMs: 300 })
    expect(parseRelayConfig(applyOverrides(base, { 'redis-url': REDIS, 'redis-cluster': true })).redis.cluster).toBe(true)
    expect(parseRelayConfig(applyOverrides(base, { 'redis-url': REDIS, 'redis-cluster': '0' })).redis.cluster).toBe(false)
    expect(problemAt(() => parseRelayConfig(applyOverrides(base, { 'redis-url': REDIS, 'redis-cluster': 'yes' })), 'redis.cluster').message)
      .toMatch(/boolean/)
  })

  it('never repeats the Redis URL (or its password) in a configuration error', () => {
    const err = errorOf(() => parseRelayConfig({ region: 'eu-west', redis: { url: REDIS } }))
    expect(err.message).not.toContain('hunter2-secret')
  })
})

describe('dataDirOf', () => {
  it('defaults to ./data/<region> under the working directory, and resolves a relative dataDir', () => {
    expect(dataDirOf(parseRelayConfig({ region: 'eu-west' }), '/srv')).toBe(path.resolve('/srv/data/eu-west'))
    expect(dataDirOf(parseRelayConfig({ region: 'eu-west', dataDir: 'store' }), '/srv')).toBe(path.resolve('/srv/store'))
    expect(dataDirOf(parseRelayConfig({ region: 'eu-west', dataDir: '/abs' }), '/srv')).toBe('/abs')
  })
})
