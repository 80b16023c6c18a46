/** The example apps, by the name `wasmesh app <name>` and the page use. */
export * as mandelbrot from './mandelbrot/driver.ts'
export * as hashsearch from './hashsearch/driver.ts'
export * as montecarlo from './montecarlo/driver.ts'
