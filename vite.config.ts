/**
 * Builds the wasmesh page (apps/page/) into build/page (not dist/: `build:lib` empties dist/). `wasmesh bootstrap --http-port`
 * and `npm start` serve that folder; any static host works too, given a
 * config.json next to index.html (see node/http-server.ts).
 */
import { readFileSync, existsSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defineConfig, type Plugin } from 'vite'

const DEMOS = ['echo.wasm', 'spin.wasm']
const wasmDir = fileURLToPath(new URL('./build/wasm/', import.meta.url))

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp'
}

/** Serves and emits the demo workloads (build/wasm, made by `npm run build:wasm`) under demo/. */
function demoModules (): Plugin {
  return {
    name: 'wasmesh-demo-modules',
    configureServer (server) {
      server.middlewares.use((req, res, next) => {
        const name = req.url?.match(/\/demo\/([a-z-]+\.wasm)$/)?.[1]
        if (name == null || !DEMOS.includes(name)) {
          next()
          return
        }
        res.setHeader('Content-Type', 'application/wasm')
        res.end(readFileSync(wasmDir + name))
      })
    },
    generateBundle () {
      for (const name of DEMOS) {
        if (!existsSync(wasmDir + name)) {
          this.error(`build/wasm/${name} is missing: run \`npm run build:wasm\` first`)
        }
        this.emitFile({ type: 'asset', fileName: `demo/${name}`, source: readFileSync(wasmDir + name) })
      }
    }
  }
}

const wasmerSdkDir = fileURLToPath(new URL('./node_modules/@wasmer/sdk/', import.meta.url))
/** Node-only files of the SDK (they import node: modules), and the WISP network client (a bare import; we run with the network disabled). */
const WASMER_SDK_SKIPPED = /^dist\/(node[^/]*\.js|node\.js|wisp-network\.js)$|\.(map|d\.ts)$/

/** The files of @wasmer/sdk's dist/ and pkg/ a browser loads, relative to the package. */
function wasmerSdkFiles (): string[] {
  return ['dist', 'pkg']
    .flatMap(dir => readdirSync(join(wasmerSdkDir, dir), { recursive: true, withFileTypes: true }).filter(entry => entry.isFile()).map(entry => relative(wasmerSdkDir, join(entry.parentPath, entry.name))))
    .filter(file => !WASMER_SDK_SKIPPED.test(file) || file === 'dist/node-compat.js' || file === 'dist/node-network-rpc.js')
}

/**
 * Serves and emits @wasmer/sdk unbundled under vendor/wasmer-sdk/ (for
 * WASIX jobs, web/wasix.ts): bundling it breaks its workers' relative
 * imports ("Scheduler is dead", ../shared/STACK.md).
 */
function wasmerSdkStatic (): Plugin {
  return {
    name: 'wasmesh-wasmer-sdk',
    configureServer (server) {
      const files = new Set(wasmerSdkFiles())
      server.middlewares.use((req, res, next) => {
        const file = req.url?.split('?')[0]?.match(/\/vendor\/wasmer-sdk\/(.+)$/)?.[1]
        if (file == null || !files.has(file)) {
          next()
          return
        }
        res.setHeader('Content-Type', file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript')
        res.end(readFileSync(join(wasmerSdkDir, file)))
      })
    },
    generateBundle () {
      for (const file of wasmerSdkFiles()) {
        this.emitFile({ type: 'asset', fileName: `vendor/wasmer-sdk/${file}`, source: readFileSync(join(wasmerSdkDir, file)) })
      }
    }
  }
}

export default defineConfig({
  root: 'apps/page',
  base: './',
  plugins: [demoModules(), wasmerSdkStatic()],
  resolve: {
    // hashing that works outside a secure context (web/sha2.ts): a phone on the LAN loads the page over plain HTTP
    alias: [{ find: /^multiformats\/hashes\/sha2$/, replacement: fileURLToPath(new URL('./web/sha2.ts', import.meta.url)) }]
  },
  build: {
    outDir: '../../build/page',
    emptyOutDir: true,
    target: 'es2023',
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      // the page, the functions demo, and the functions Service Worker, which must sit at the site's root under a fixed name
      input: {
        main: fileURLToPath(new URL('./apps/page/index.html', import.meta.url)),
        functions: fileURLToPath(new URL('./apps/page/functions.html', import.meta.url)),
        'fn-sw': fileURLToPath(new URL('./web/functions-sw.ts', import.meta.url))
      },
      output: { entryFileNames: chunk => chunk.name === 'fn-sw' ? 'fn-sw.js' : 'assets/[name]-[hash].js' }
    }
  },
  worker: { format: 'es' },
  server: { headers: isolation },
  optimizeDeps: { exclude: ['@wasmer/sdk'] },
  preview: { headers: isolation }
})
