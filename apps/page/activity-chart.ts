/**
 * The activity charts, drawn with uPlot: jobs served and consumed per second,
 * and the share of cores busy with the network's jobs, over the last
 * minutes. Loaded with `import()` once the page joined, so uPlot stays out
 * of the first paint's JavaScript.
 */
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import type { Activity } from './activity.ts'

const AXIS = { stroke: '#8d93a8', grid: { stroke: '#2a2f40', width: 1 }, ticks: { stroke: '#2a2f40', width: 1 } }
/** Tableau 10 blue and orange, then green for CPU: the same palette as the workers'. */
const SERVED = '#4e79a7'
const CONSUMED = '#f28e2b'
const CPU = '#59a14f'

export interface ActivityCharts {
  jobs: uPlot
  cpu: uPlot
}

/** Draws the two charts into `jobs` and `cpu`, redrawn after every sample and on resize. */
export function drawActivity (activity: Activity, jobs: HTMLElement, cpu: HTMLElement): ActivityCharts {
  const size = (element: HTMLElement): { width: number, height: number } => ({ width: Math.max(200, element.clientWidth), height: 160 })
  const jobsChart = new uPlot({
    ...size(jobs),
    title: 'Jobs per second',
    series: [
      {},
      { label: 'served for others', stroke: SERVED, fill: `${SERVED}33`, width: 2, points: { show: false }, value: (_u, v) => v == null ? '—' : v.toFixed(1) },
      { label: 'this tab\'s, done', stroke: CONSUMED, width: 2, points: { show: false }, value: (_u, v) => v == null ? '—' : v.toFixed(1) }
    ],
    axes: [AXIS, { ...AXIS, size: 40 }],
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    legend: { live: false }
  }, [[], [], []], jobs)
  const cpuChart = new uPlot({
    ...size(cpu),
    title: 'Cores busy with the network\'s jobs',
    series: [
      {},
      { label: '% of this device', stroke: CPU, fill: `${CPU}33`, width: 2, points: { show: false }, value: (_u, v) => v == null ? '—' : `${v.toFixed(0)} %` }
    ],
    axes: [AXIS, { ...AXIS, size: 52, values: (_u, ticks) => ticks.map(t => `${t}%`) }],
    scales: { y: { range: [0, 100] } },
    legend: { live: false }
  }, [[], []], cpu)
  const redraw = (): void => {
    const { times, served, consumed, cpu: busy } = activity.series
    jobsChart.setData([times, served, consumed])
    cpuChart.setData([times, busy])
  }
  activity.onSample(redraw)
  new ResizeObserver(() => {
    jobsChart.setSize(size(jobs))
    cpuChart.setSize(size(cpu))
  }).observe(jobs)
  redraw()
  return { jobs: jobsChart, cpu: cpuChart }
}
