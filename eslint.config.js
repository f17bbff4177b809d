// @ts-check
// One lint for the whole repository (`npm run lint`): typescript-eslint's recommended rules with
// type information, import cycles and package/folder boundaries (eslint-plugin-import-x), and the
// code's formatting (@stylistic).
import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import { defineConfig } from 'eslint/config'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'
import importX from 'eslint-plugin-import-x'
import globals from 'globals'
import tseslint from 'typescript-eslint'

/**
 * The workspace packages that each published package's src and bin may import, besides itself.
 * testkit and bench (private) may import anything; examples may import any published package.
 * The relay's CLI loads @georelay/cluster with a variable specifier, which no rule resolves.
 */
const PACKAGE_DEPS = {
  core: [],
  'store-sqlite': ['core'],
  'store-postgres': ['core'],
  client: ['core'],
  relay: ['core', 'store-sqlite', 'store-postgres'],
  cluster: ['core', 'relay'],
}
const PUBLISHED = Object.keys(PACKAGE_DEPS)
const PRIVATE = ['testkit', 'bench']

/** packages/relay/src's folders, lowest first: each may import only from folders before it. */
const RELAY_LAYERS = [
  'observability', 'config', 'auth', 'limits', 'placement', 'replication',
  'docs', 'region', 'mesh', 'clients', 'server', 'cli',
]

const packageZones = Object.entries(PACKAGE_DEPS).map(([name, deps]) => ({
  target: [`packages/${name}/src`, `packages/${name}/bin`],
  from: [...PUBLISHED, ...PRIVATE]
    .filter(other => other !== name && !deps.includes(other))
    .map(other => `packages/${other}`),
  message: deps.length === 0
    ? `@georelay/${name} imports no other @georelay package.`
    : `@georelay/${name} may import only ${deps.map(d => `@georelay/${d}`).join(', ')}.`,
}))

const exampleZones = [{
  target: ['examples/*/src/**', 'examples/*/bin/**', 'examples/*/*.js'],
  from: PRIVATE.map(name => `packages/${name}`),
  message: 'An example imports published packages only (its tests may use any).',
}]

const relayZones = RELAY_LAYERS.map((folder, i) => ({
  target: `packages/relay/src/${folder}`,
  from: [...RELAY_LAYERS.slice(i + 1).map(later => `packages/relay/src/${later}`), 'packages/relay/src/index.ts'],
  message: `relay/src/${folder} may import only from ${RELAY_LAYERS.slice(0, i).join(', ') || 'no other folder'}.`,
}))

export default defineConfig(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/test-output/**', '**/data/**'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        // One program for every TypeScript file, sources and tests alike: the one that
        // `npm run typecheck` checks. (projectService finds only each package's tsconfig.json,
        // which leaves out the tests.)
        project: './tsconfig.test.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { '@stylistic': stylistic, 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      // tsconfig.test.json's paths map @georelay/* to the packages' src, so that cycles and
      // boundaries are followed through the sources rather than the built dist.
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.test.json' })],
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      // A variable that closures read before its one assignment must stay `let` (a `const`
      // would throw in its temporal dead zone instead of reading undefined).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      'import-x/no-cycle': 'error',
      // Every import must resolve, or the cycle and boundary rules would skip it silently. The
      // launchers (bin/, jest setup, browser entries) import their package's built dist, which
      // exists only after `npm run build`; the sources it is built from are linted themselves,
      // so lint does not depend on a build having run.
      'import-x/no-unresolved': ['error', { ignore: ['^\\.{1,2}/(\\.\\./)*dist/'] }],
      'import-x/no-restricted-paths': ['error', {
        basePath: import.meta.dirname,
        zones: [...packageZones, ...exampleZones, ...relayZones],
      }],

      // Formatting: the code's existing style.
      ...stylistic.configs.customize({
        indent: 2,
        quotes: 'single',
        semi: false,
        commaDangle: 'always-multiline',
        braceStyle: '1tbs',
        arrowParens: false,
        quoteProps: 'as-needed',
        jsx: false,
      }).rules,
      '@stylistic/indent': ['error', 2, {
        SwitchCase: 1,
        flatTernaryExpressions: false,
        offsetTernaryExpressions: false,
        ignoredNodes: ['TSUnionType', 'TSIntersectionType'],
      }],
      '@stylistic/arrow-parens': ['error', 'as-needed'],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      '@stylistic/space-before-function-paren': ['error', 'always'],
      // Line breaks go before operators, except after `+` joining strings and after `=`.
      '@stylistic/operator-linebreak': ['error', 'before', { overrides: { '+': 'after', '=': 'after' } }],
      // Not the code's style: one-line `if (x) return` bodies and handlers (`=> { n++ }`),
      // chained `a ? b : c ? d : e` ternaries, and argument lists wrapped where they fill the line.
      '@stylistic/max-statements-per-line': 'off',
      '@stylistic/multiline-ternary': 'off',
      '@stylistic/list-style': 'off',
      '@stylistic/max-len': ['error', {
        code: 120,
        ignoreStrings: true,
        ignoreTemplateLiterals: true,
        ignoreRegExpLiterals: true,
        ignoreUrls: true,
      }],
    },
  },
  {
    // Inside the relay a folder reaches another only through its index.ts.
    files: ['packages/relay/src/*/**'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: '^\\.\\./[^/]+/(?!index\\.js$)',
          message: 'Import another relay folder through its index.js.',
        }],
      }],
    },
  },
  {
    files: ['examples/collab-editor/src/web/**', 'packages/client/test/browser/**'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Plain JavaScript is in no TypeScript program.
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
)
