import { defineConfig } from 'vite'

// Cross-origin isolation, as the wasmesh page is served: finer timers for the stats of jobs this tab runs, and no
// window of another origin can reach it. The SDK works without; serve the same headers in production if you keep them.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp'
}

export default defineConfig({
  base: './',
  server: { headers: isolation },
  preview: { headers: isolation },
  // libp2p, Helia and the runtime: about 1 MB minified, 280 KB gzip
  build: { target: 'es2023', chunkSizeWarningLimit: 1200 }
})
