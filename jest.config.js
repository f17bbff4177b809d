// One jest project per package; ts-jest's ESM preset so that every path, tests included,
// loads yjs through `import` (two copies of Yjs break `instanceof`). Run with
// `node --experimental-vm-modules` (see the `test` script).
const packages = ['core', 'store-sqlite', 'store-postgres', 'client', 'relay', 'cluster', 'testkit', 'bench']

const project = (name, dir = `packages/${name}`) => ({
  displayName: name,
  testEnvironment: 'node',
  testMatch: [`<rootDir>/${dir}/test/**/*.test.ts`],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^@georelay/(core|store-sqlite|store-postgres|client|relay|cluster|testkit|bench)$': '<rootDir>/packages/$1/src/index.ts',
    '^@georelay/core/testing$': '<rootDir>/packages/core/src/testing/index.ts',
    '^@georelay/cluster/free-port$': '<rootDir>/packages/cluster/src/free-port.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    // Type checking is done once by `tsc -p tsconfig.test.json`; here we only transpile.
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.test.json' }],
  },
})

export default {
  // One PostgreSQL for the run (packages/testkit/jest): suites take a schema each.
  globalSetup: '<rootDir>/packages/testkit/jest/global-setup.js',
  globalTeardown: '<rootDir>/packages/testkit/jest/global-teardown.js',
  projects: [...packages.map(name => project(name)), project('examples', 'examples/*')],
  testTimeout: 30_000,
  // Two worker processes, not jest's in-band default on two cores: in band, every suite ran in
  // the one process that also owns the shared PostgreSQL, so what a suite left behind (timers,
  // sockets, 1.8 GB of module copies by the end) weighed on every later suite and on the
  // server's log pipe. Every worker holds more than this limit after a suite, so each suite
  // gets a fresh process: nothing one leaves behind can slow another.
  maxWorkers: 2,
  workerIdleMemoryLimit: '20MB',
  // A handle left open after the last test (a socket's keep-alive, a child's pipe) must never hold
  // the run, or CI: every test has asserted by then, and jest says which suite leaked with
  // --detectOpenHandles.
  forceExit: true,
}
