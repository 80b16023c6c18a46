import type { Libp2pOptions } from 'libp2p'
import type { Registry } from 'prom-client'

/**
 * libp2p's Prometheus metrics in a registry of their own (not prom-client's
 * global one, which other code may share). Loaded only when asked for: most
 * processes never export metrics.
 */
export async function prometheusRegistry (): Promise<{ registry: Registry, metrics: NonNullable<Libp2pOptions['metrics']> }> {
  const [{ prometheusMetrics }, { Registry }] = await Promise.all([import('@libp2p/prometheus-metrics'), import('prom-client')])
  const registry = new Registry()
  return { registry, metrics: prometheusMetrics({ registry }) }
}
