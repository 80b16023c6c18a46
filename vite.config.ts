/**
 * Builds the wasmesh page (apps/page/) into build/page (not dist/: `build:lib` empties dist/). `wasmesh bootstrap --http-port`
 * and `npm start` serve that folder; any static host works too, given a
 * config.json next to index.html (see node/http-server.ts).
 */
import { readFileSync, existsSync } from 'node:fs'
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

export default defineConfig({
  root: 'apps/page',
  base: './',
  plugins: [demoModules()],
  resolve: {
    // hashing that works outside a secure context (web/sha2.ts): a phone on the LAN loads the page over plain HTTP
    alias: [{ find: /^multiformats\/hashes\/sha2$/, replacement: fileURLToPath(new URL('./web/sha2.ts', import.meta.url)) }]
  },
  build: {
    outDir: '../../build/page',
    emptyOutDir: true,
    target: 'es2023',
    chunkSizeWarningLimit: 1500
  },
  worker: { format: 'es' },
  server: { headers: isolation },
  preview: { headers: isolation }
})
