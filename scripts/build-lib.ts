/**
 * Builds the published JavaScript (dist/) with esbuild; `tsc` emits only
 * the type declarations beside it (tsconfig.build*.json).
 *
 * Why bundle: a consumer's `npm install` must get exactly the code we test.
 * Every package named in package.json `dependencies` stays an import that
 * npm installs for the consumer; anything else the build reaches is inlined.
 * That is how @libp2p/webrtc travels: it is a devDependency, patched here by
 * patch-package (patches/), and inlined with the fix, so consumers neither
 * install it nor its react-native-webrtc dependency (whose react-native peer
 * is ~100 MB), and need no install script. Its native part, node-datachannel,
 * is a dependency of ours.
 *
 * Three builds, each writing into the folder its entries' relative URLs
 * expect: the SDK for Node and its job worker in dist/node/ (worker-pool.ts
 * loads `./job-worker.js` next to the code that holds it), the browser SDK
 * with its job worker and the functions Service Worker in dist/web/, and the CLI in dist/apps/cli/, which
 * imports the Node SDK from dist/node/ rather than carrying a second copy.
 * The CLI's bin (bin.js) and the SDK first check the Node version.
 */
import { readFile, rm } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { join, resolve } from 'node:path'
import { build, type BuildOptions, type Plugin } from 'esbuild'

const root = resolve(import.meta.dirname, '..')
const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
const dependencies = Object.keys(manifest.dependencies)
if (dependencies.includes('@libp2p/webrtc')) {
  throw new Error('@libp2p/webrtc must stay a devDependency: it is inlined so its patch travels (see scripts/build-lib.ts)')
}

const common: BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  target: 'es2023',
  splitting: true,
  chunkNames: 'chunk-[hash]',
  sourcemap: true,
  external: dependencies.flatMap(name => [name, `${name}/*`]),
  logLevel: 'warning'
}

/** Inlined CommonJS (in @libp2p/webrtc's dependencies) calls `require` for Node built-ins, which ESM lacks. */
const requireShim = "import { createRequire as __wasmeshCreateRequire } from 'node:module'; const require = __wasmeshCreateRequire(import.meta.url);"

/**
 * The CLI imports the Node SDK as the package's own file, never inlined, and
 * its bin (bin.ts) loads main.js only after checking the Node version.
 */
const cliImports: Plugin = {
  name: 'wasmesh-cli-imports',
  setup (build) {
    build.onResolve({ filter: /\/node\/index\.ts$/ }, () => ({ path: '../../node/index.js', external: true }))
    build.onResolve({ filter: /^\.\/main\.ts$/ }, () => ({ path: './main.js', external: true }))
  }
}

await rm(join(root, 'dist'), { recursive: true, force: true })
await Promise.all([
  build({
    ...common,
    platform: 'node',
    external: [...common.external!, ...builtinModules, 'node:*'],
    banner: { js: requireShim },
    entryPoints: [{ in: 'node/index.ts', out: 'index' }, { in: 'node/executor/job-worker.ts', out: 'job-worker' }],
    outdir: 'dist/node'
  }),
  build({
    ...common,
    platform: 'node',
    external: [...common.external!, ...builtinModules, 'node:*'],
    banner: { js: requireShim },
    entryPoints: [{ in: 'apps/cli/bin.ts', out: 'bin' }, { in: 'apps/cli/main.ts', out: 'main' }],
    outdir: 'dist/apps/cli',
    plugins: [cliImports]
  }),
  build({
    ...common,
    platform: 'browser',
    // functions-sw.js is served at the dApp's root (docs/functions.md): it must stay one file with no imports
    entryPoints: [{ in: 'web/index.ts', out: 'index' }, { in: 'web/job-worker.ts', out: 'job-worker' }, { in: 'web/functions-sw.ts', out: 'functions-sw' }],
    outdir: 'dist/web'
  })
])
