/**
 * The simulated mesh: up to thousands of peers running the real protocol
 * services in one process, in virtual time (docs/scale.md).
 *
 *   npm run sim -- --peers 1000 --jobs 10000 [--churn 1.7] [--liars 10] [--requesters 4] --out sim.json [--trace trace.json]
 *
 * Phases: N workers join (and the requesters); the mesh settles (--warmup);
 * gossip is measured while idle (--window); one more worker joins and we time
 * how long each requester takes to see it; then the requesters run --jobs
 * jobs between them (a map each), with --churn workers leaving and as many
 * joining per second, --liars of the workers signing wrong outputs.
 */
import { writeFile } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ADVERT_INTERVAL_MS, DEFAULT_LIMITS, MAX_ADVERT_STRETCH } from '../../protocol/constants.ts'
import { runMany, type PendingJob } from '../../protocol/job/run-many.ts'
import { encodeJob } from '../../protocol/wire/job.ts'
import { scriptArgs } from '../args.ts'
import { VirtualClock } from './clock.ts'
import { busyMeter, expectedOutput, type RunTime } from './executor.ts'
import { GossipNet, type PeerTraffic } from './gossip.ts'
import { SimWorld, type SimNode } from './mesh.ts'

export interface SimOptions {
  peers: number
  jobs: number
  /** Workers leaving per second (as many join). */
  churn: number
  liars: number
  requesters: number
  slots: number
  latencyMs: number
  loss: number
  /** Mean job run time (log-normal, sigma 0.5), virtual ms. */
  runMeanMs: number
  /**
   * Whose the run time is: drawn for each `execution` (a slow execution is
   * the worker's doing: a copy elsewhere runs at a fresh speed), or once per
   * `input` (the job's own length: every copy takes as long).
   */
  jobTimes: 'execution' | 'input'
  warmupS: number
  windowS: number
  seed: number
  /** Base advert interval; the protocol's default when absent. */
  advertIntervalMs?: number
  /** Peers count towards stretching the advert interval once heard of this long (the protocol's default when absent). */
  stretchAgeS?: number
  /** Job phase limit, virtual s. */
  limitS: number
  /** Record every execution of the map and when each job was accepted (`SimResult.trace`). */
  trace?: boolean
}

/** The map's executions and acceptances, in virtual ms since the map started: where its tail's time goes. */
export interface SimTrace {
  executions: Array<{ input: string, startMs: number, ms: number, endMs: number | null, completed: boolean }>
  accepted: Array<{ input: string, atMs: number }>
}

export interface SimResult {
  peers: number
  jobs: number
  completed: number
  lost: number
  wrong: number
  /**
   * Useful utilisation: slot time spent on executions that ran to the end
   * and delivered a receipt (the accepted results and the checks the
   * requester asked for), over the slot time of the workers present during
   * the makespan.
   */
  utilisation: number
  /** Busy utilisation: slot time spent executing anything, executions cancelled on the way included (extra replicas, hedges, jobs of crashed workers). */
  busyUtilisation: number
  /** The map's own work: one completed execution per job (its checks not counted), over the same slot time. */
  mapUtilisation: number
  /** Share of all slots executing, per second of the map. */
  occupancy: number[]
  /** Executions that ran to the end, per completed job. */
  executionsPerJob: number
  makespanMs: number
  /** Ideal makespan: the total run time spread over every slot, no gaps. */
  idealMakespanMs: number
  gossipBytesPerPeerPerS: number
  gossipMessagesPerPeerPerS: number
  advertsPerPeerPerS: number
  /** Advert payload bytes delivered per peer per second: what `npm run bench`'s gossip group counts. */
  advertPayloadBytesPerPeerPerS: number
  gossipBytesPerPeerPerSDuringJobs: number
  gossipMessagesPerPeerPerSDuringJobs: number
  /** Gossip per peer from the first join until 10 s after the last (the mesh forming), bytes per second. */
  joinGossipBytesPerPeerPerS: number
  /** How long the requesters, which join after the workers, took to know every worker (virtual ms); null if not within the warmup. */
  meshSeenMs: number | null
  /** How long until every requester's table held a worker that just joined (virtual ms); null if not within a minute. */
  discoveryMs: number | null
  rssMiB: number
  heapMiB: number
  memoryPerPeerKiB: number
  executions: number
  requesters: Array<{ completed: number, lost: number, wrong: number, finishedMs: number }>
  churn: { left: number, joined: number }
  liars: number
  options: SimOptions
  wallMs: number
  trace?: SimTrace
}

/** mulberry32: the whole run follows from --seed (but for key generation). */
function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function logNormal (random: () => number, mean: number, sigma: number): () => number {
  const mu = Math.log(mean) - sigma * sigma / 2
  return () => {
    const u = Math.max(random(), 1e-12)
    const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random())
    return Math.exp(mu + sigma * normal)
  }
}

function sumTraffic (traffic: PeerTraffic[]): PeerTraffic {
  return traffic.reduce((a, t) => ({ bytesIn: a.bytesIn + t.bytesIn, bytesOut: a.bytesOut + t.bytesOut, messagesIn: a.messagesIn + t.messagesIn, delivered: a.delivered + t.delivered, payloadIn: a.payloadIn + t.payloadIn }), { bytesIn: 0, bytesOut: 0, messagesIn: 0, delivered: 0, payloadIn: 0 })
}

/** Real milliseconds (performance.now() is virtual while the clock runs). */
const realNow = (): number => Number(process.hrtime.bigint() / 1_000_000n)

const mib = (bytes: number): number => Math.round(bytes / 2 ** 20 * 10) / 10

/**
 * The advert interval a mesh of `peers` settles on (CapacityService's
 * stretch): measuring windows must hold a whole interval, and the warm-up
 * must outlast the first one, or the rate seen depends on when peers joined.
 */
export function settledIntervalMs (peers: number, baseMs = ADVERT_INTERVAL_MS): number {
  return baseMs * Math.min(MAX_ADVERT_STRETCH, Math.max(1, peers / (2 * Math.log2(Math.max(peers, 2)))))
}

export async function simulate (options: SimOptions, log: (line: string) => void = () => {}): Promise<SimResult> {
  const wallStart = realNow()
  const random = prng(options.seed)
  globalThis.gc?.()
  const rssBefore = process.memoryUsage().rss
  const clock = new VirtualClock(2)
  const gossip = new GossipNet({ random, latencyMs: options.latencyMs, jitterMs: options.latencyMs / 2, loss: options.loss })
  const busy = busyMeter({ trace: options.trace })
  const draw = logNormal(random, options.runMeanMs, 0.5)
  const byInput = new Map<string, number>()
  const runTime: RunTime = options.jobTimes === 'input'
    ? input => {
      const key = Buffer.from(input).toString('latin1')
      const ms = byInput.get(key) ?? draw()
      byInput.set(key, ms)
      return ms
    }
    : () => draw()
  const world = new SimWorld({ gossip, network: { latencyMs: options.latencyMs }, runTime, busy, advertIntervalMs: options.advertIntervalMs, ...(options.stretchAgeS != null ? { stretchMinAgeMs: options.stretchAgeS * 1000 } : {}) })
  gossip.start()
  try {
    // joining: one peer every 20 ms (virtual), liars spread among the honest
    const liarEvery = options.liars > 0 ? Math.floor(options.peers / options.liars) : Infinity
    let liars = 0
    for (let i = 0; i < options.peers; i++) {
      const liar = liars < options.liars && i % liarEvery === 0
      liars += liar ? 1 : 0
      await world.addWorker(options.slots, liar)
      await clock.advance(20)
      if ((i + 1) % 100 === 0) {
        log(`${i + 1} workers joined (${Math.round((realNow() - wallStart) / 1000)} s wall)`)
      }
    }
    const requesters: SimNode[] = []
    for (let i = 0; i < options.requesters; i++) {
      requesters.push(await world.addRequester())
    }
    log(`${options.peers} workers and ${options.requesters} requesters joined (${Math.round(clock.elapsed / 1000)} s virtual, ${Math.round((realNow() - wallStart) / 1000)} s wall)`)
    // how long the requesters, which joined last, take to hear of every worker
    const joinedAll = clock.elapsed
    const seenAll = await clock.until(() => requesters.every(r => r.capacity.peers().length >= world.workers().length), options.warmupS * 1000)
    const meshSeenMs = seenAll ? clock.elapsed - joinedAll : null
    await clock.advance(Math.max(0, joinedAll + 10_000 - clock.elapsed))
    const joining = sumTraffic(gossip.traffic())
    const joinSeconds = clock.elapsed / 1000
    log(`the requesters knew every worker after ${meshSeenMs ?? '> warmup'} ms; joining cost ${(joining.bytesIn / gossip.size / joinSeconds).toFixed(0)} B/s per peer`)
    await clock.advance(Math.max(0, joinedAll + options.warmupS * 1000 - clock.elapsed))
    globalThis.gc?.()
    const rssBuilt = process.memoryUsage().rss
    const before = sumTraffic(gossip.traffic())
    await clock.advance(options.windowS * 1000)
    const after = sumTraffic(gossip.traffic())
    const members = gossip.size
    const idle = {
      bytes: (after.bytesIn - before.bytesIn) / members / options.windowS,
      messages: (after.messagesIn - before.messagesIn) / members / options.windowS,
      adverts: (after.delivered - before.delivered) / members / options.windowS,
      payload: (after.payloadIn - before.payloadIn) / members / options.windowS
    }
    log(`idle gossip: ${idle.bytes.toFixed(0)} B/s, ${idle.messages.toFixed(2)} messages/s, ${idle.adverts.toFixed(2)} adverts/s per peer (${Math.round((realNow() - wallStart) / 1000)} s wall)`)

    // time for every requester to see a worker that just joined
    const joinedAt = clock.elapsed
    const newcomer = await world.addWorker(options.slots)
    const seen = await clock.until(() => requesters.every(r => r.capacity.get(newcomer.id) != null), 60_000)
    const discoveryMs = seen ? clock.elapsed - joinedAt : null
    log(`a new worker was seen by every requester after ${discoveryMs ?? '>60000'} ms`)

    // the jobs: each requester maps its share, all at once
    const module = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('sim module')))
    const perRequester = requesters.map((_, r) => Math.floor(options.jobs / requesters.length) + (r < options.jobs % requesters.length ? 1 : 0))
    const stats = requesters.map(() => ({ completed: 0, lost: 0, wrong: 0, finishedMs: 0 }))
    const controller = new AbortController()
    const jobsStart = clock.elapsed
    const jobsStartAt = Date.now()
    const accepted: SimTrace['accepted'] = []
    const busyBefore = { ...busy }
    const occupancy: Array<{ running: number, slots: number }> = []
    const trafficBefore = sumTraffic(gossip.traffic())
    const membersBefore = gossip.size
    const churn = { left: 0, joined: 0 }
    let slotMs = 0
    let lastTick = clock.elapsed
    const accountSlots = (): void => {
      const now = clock.elapsed
      const slots = world.workers().reduce((n, w) => n + w.slots, 0)
      slotMs += slots * (now - lastTick)
      lastTick = now
      const second = Math.floor((now - jobsStart) / 1000)
      const bucket = occupancy[second] ?? { running: 0, slots: 0 }
      bucket.running += busy.running
      bucket.slots += slots
      occupancy[second] = bucket
    }
    let pendingChurn = 0
    const churnTimer = options.churn > 0
      ? setInterval(() => {
        pendingChurn += options.churn / 10
        while (pendingChurn >= 1) {
          pendingChurn--
          accountSlots()
          const workers = world.workers()
          const leaving = workers[Math.floor(random() * workers.length)]
          if (leaving != null) {
            churn.left++
            void leaving.crash()
          }
          churn.joined++
          void world.addWorker(options.slots)
        }
      }, 100)
      : undefined
    const slotTimer = setInterval(accountSlots, 100)
    const progress = setInterval(() => {
      log(`${Math.round((clock.elapsed - jobsStart) / 1000)} s into the jobs: ${busy.completed - busyBefore.completed} executions done, ${busy.running} running (${Math.round((realNow() - wallStart) / 1000)} s wall)`)
    }, 10_000)
    let running = requesters.length
    await Promise.all(requesters.map(async (node, r) => {
      const { requester } = node.requester as NonNullable<SimNode['requester']>
      // each job's input names it: what the trace records, and what an honest output is derived from
      const inputOf = (i: number): string => `requester ${r} job ${i}`
      const jobs: PendingJob[] = []
      for (let i = 0; i < (perRequester[r] as number); i++) {
        const input = new TextEncoder().encode(inputOf(i))
        const job = await encodeJob({ v: 1, module, abi: 'direct', args: [], env: {}, input, limits: { ...DEFAULT_LIMITS, timeoutMs: Math.max(60_000, options.runMeanMs * 20) }, redundancy: 1 })
        jobs.push(async () => requester.execute(job, { signal: controller.signal, resume: false }))
      }
      const concurrency = Math.ceil(2 * (options.peers + 1) * options.slots / requesters.length)
      void (async () => {
        const stat = stats[r] as SimResult['requesters'][number]
        // by input: a result withdrawn later (its worker was caught lying) is replaced by the rerun's
        const final = new Map<number, 'ok' | 'wrong' | 'lost'>()
        for await (const result of runMany(jobs, concurrency, controller.signal, requester)) {
          if (!result.ok) {
            final.set(result.index, 'lost')
            continue
          }
          if (options.trace === true) {
            accepted.push({ input: inputOf(result.index), atMs: clock.elapsed - jobsStart })
          }
          const expected = expectedOutput(new TextEncoder().encode(inputOf(result.index)))
          final.set(result.index, Buffer.compare(Buffer.from(result.result.output), Buffer.from(expected)) === 0 ? 'ok' : 'wrong')
        }
        for (const outcome of final.values()) {
          stat.completed += outcome === 'lost' ? 0 : 1
          stat.wrong += outcome === 'wrong' ? 1 : 0
          stat.lost += outcome === 'lost' ? 1 : 0
        }
        stat.finishedMs = clock.elapsed - jobsStart
        running--
      })()
    }))
    await clock.until(() => running === 0, options.limitS * 1000)
    accountSlots()
    clearInterval(churnTimer)
    clearInterval(slotTimer)
    clearInterval(progress)
    controller.abort()
    const makespanMs = Math.max(...stats.map(s => s.finishedMs || clock.elapsed - jobsStart))
    const trafficAfter = sumTraffic(gossip.traffic())
    const jobSeconds = (clock.elapsed - jobsStart) / 1000
    const membersAvg = (membersBefore + gossip.size) / 2
    const completed = stats.reduce((n, s) => n + s.completed, 0)
    const wrong = stats.reduce((n, s) => n + s.wrong, 0)
    const lost = options.jobs - completed
    const rss = process.memoryUsage()
    const share = (ms: number): number => slotMs === 0 ? 0 : Math.round(ms / slotMs * 1000) / 1000
    return {
      peers: options.peers,
      jobs: options.jobs,
      completed,
      lost,
      wrong,
      utilisation: share(busy.completedMs - busyBefore.completedMs),
      busyUtilisation: share(busy.busyMs - busyBefore.busyMs),
      mapUtilisation: share(busy.firstMs - busyBefore.firstMs),
      occupancy: occupancy.map(b => Math.round(b.running / Math.max(1, b.slots) * 100) / 100),
      executionsPerJob: completed === 0 ? 0 : Math.round((busy.completed - busyBefore.completed) / completed * 100) / 100,
      makespanMs: Math.round(makespanMs),
      idealMakespanMs: Math.round(options.jobs * options.runMeanMs / ((options.peers + 1) * options.slots)),
      gossipBytesPerPeerPerS: Math.round(idle.bytes),
      gossipMessagesPerPeerPerS: Math.round(idle.messages * 100) / 100,
      advertsPerPeerPerS: Math.round(idle.adverts * 100) / 100,
      advertPayloadBytesPerPeerPerS: Math.round(idle.payload),
      gossipBytesPerPeerPerSDuringJobs: Math.round((trafficAfter.bytesIn - trafficBefore.bytesIn) / membersAvg / jobSeconds),
      gossipMessagesPerPeerPerSDuringJobs: Math.round((trafficAfter.messagesIn - trafficBefore.messagesIn) / membersAvg / jobSeconds * 100) / 100,
      discoveryMs,
      joinGossipBytesPerPeerPerS: Math.round(joining.bytesIn / membersBefore / joinSeconds),
      meshSeenMs,
      rssMiB: mib(rss.rss),
      heapMiB: mib(rss.heapUsed),
      memoryPerPeerKiB: Math.round((rssBuilt - rssBefore) / (options.peers + options.requesters) / 1024),
      executions: busy.executions,
      requesters: stats,
      churn,
      liars,
      options,
      wallMs: Math.round(realNow() - wallStart),
      ...(busy.trace != null
        ? {
            trace: {
              executions: busy.trace.filter(e => e.startedAt >= jobsStartAt).map(e => ({ input: e.input, startMs: e.startedAt - jobsStartAt, ms: e.ms, endMs: e.endedAt != null ? e.endedAt - jobsStartAt : null, completed: e.completed })),
              accepted
            }
          }
        : {})
    }
  } finally {
    await world.stop()
    clock.uninstall()
  }
}

function jobTimes (value: string): SimOptions['jobTimes'] {
  if (value !== 'execution' && value !== 'input') {
    console.error(`--job-times is "execution" (each execution draws its run time) or "input" (each job's copies all take as long), not "${value}"`)
    process.exit(2)
  }
  return value
}

const USAGE = `npm run sim -- [options]: a simulated mesh running the real protocol services in virtual time (docs/scale.md)
  --peers N          workers (100)                  --jobs M        jobs, mapped by the requesters (1000)
  --churn R          workers leaving (and as many joining) per second (0)
  --liars L          workers signing wrong outputs (0)
  --requesters K     requesters, each mapping its share at once (1)
  --slots S          job slots per worker (1)       --latency MS    link latency, ±half as jitter (20)
  --loss P           gossip message loss, 0-1 (0)   --run-mean MS   mean job run time, log-normal σ 0.5 (2000)
  --job-times execution|input   whose a job's length is: each execution's draw, or the job's own (execution)
  --warmup S|auto    settling time before measuring --window S|auto  idle gossip window
  --interval MS      base advert interval           --stretch-age S peers count towards the advert stretch after S (0)
  --seed N           seed of the run's draws (1)    --limit S       job phase limit (3600)
  --out FILE         the summary as JSON            --trace FILE    every execution of the map, and each acceptance`

async function main (): Promise<void> {
  const values = scriptArgs(USAGE, {
    peers: { type: 'string', default: '100' },
    jobs: { type: 'string', default: '1000' },
    churn: { type: 'string', default: '0' },
    liars: { type: 'string', default: '0' },
    requesters: { type: 'string', default: '1' },
    slots: { type: 'string', default: '1' },
    latency: { type: 'string', default: '20' },
    loss: { type: 'string', default: '0' },
    'run-mean': { type: 'string', default: '2000' },
    'job-times': { type: 'string', default: 'execution' },
    warmup: { type: 'string', default: 'auto' },
    window: { type: 'string', default: 'auto' },
    seed: { type: 'string', default: '1' },
    interval: { type: 'string' },
    // a formed mesh by default: every peer counts towards the stretch at once (60: the protocol's cold start)
    'stretch-age': { type: 'string', default: '0' },
    limit: { type: 'string', default: '3600' },
    out: { type: 'string' },
    trace: { type: 'string' }
  })
  const options: SimOptions = {
    peers: Number(values.peers),
    jobs: Number(values.jobs),
    churn: Number(values.churn),
    liars: Number(values.liars),
    requesters: Number(values.requesters),
    slots: Number(values.slots),
    latencyMs: Number(values.latency),
    loss: Number(values.loss),
    runMeanMs: Number(values['run-mean']),
    jobTimes: jobTimes(values['job-times']),
    // auto: a settled interval and a half (and the stretch age) to settle, a whole interval to measure
    warmupS: values.warmup === 'auto' ? Math.ceil(Number(values['stretch-age']) + 1.5 * settledIntervalMs(Number(values.peers), values.interval != null ? Number(values.interval) : undefined) / 1000) : Number(values.warmup),
    windowS: values.window === 'auto' ? Math.max(60, Math.ceil(settledIntervalMs(Number(values.peers), values.interval != null ? Number(values.interval) : undefined) / 1000)) : Number(values.window),
    seed: Number(values.seed),
    ...(values.interval != null ? { advertIntervalMs: Number(values.interval) } : {}),
    stretchAgeS: Number(values['stretch-age']),
    limitS: Number(values.limit),
    trace: values.trace != null
  }
  const result = await simulate(options, line => { console.error(line) })
  const r = result
  console.log(`${r.peers} workers, ${r.options.requesters} requester(s), ${r.jobs} jobs: ${r.completed} completed, ${r.lost} lost, ${r.wrong} wrong (${r.liars} liars, ${r.churn.left} left / ${r.churn.joined} joined)`)
  console.log(`makespan ${(r.makespanMs / 1000).toFixed(1)} s (ideal ${(r.idealMakespanMs / 1000).toFixed(1)} s), utilisation ${(r.utilisation * 100).toFixed(1)} % useful, ${(r.busyUtilisation * 100).toFixed(1)} % busy, ${(r.mapUtilisation * 100).toFixed(1)} % the map's own work; ${r.executions} executions (${r.executionsPerJob} completed per job)`)
  console.log(`gossip per peer: idle ${r.gossipBytesPerPeerPerS} B/s, ${r.gossipMessagesPerPeerPerS} messages/s, ${r.advertsPerPeerPerS} adverts/s (${r.advertPayloadBytesPerPeerPerS} B/s of advert payload); during the jobs ${r.gossipBytesPerPeerPerSDuringJobs} B/s, ${r.gossipMessagesPerPeerPerSDuringJobs} messages/s`)
  console.log(`while the mesh formed: ${r.joinGossipBytesPerPeerPerS} B/s per peer; the requesters knew every worker ${r.meshSeenMs ?? '(never)'} ms after joining`)
  console.log(`a new worker seen by every requester after ${r.discoveryMs ?? '> 60000'} ms; RSS ${r.rssMiB} MiB, ${r.memoryPerPeerKiB} KiB per peer; ${(r.wallMs / 1000).toFixed(0)} s of real time`)
  for (const [i, requester] of r.requesters.entries()) {
    console.log(`requester ${i}: ${requester.completed} completed, ${requester.lost} lost, ${requester.wrong} wrong, done at ${(requester.finishedMs / 1000).toFixed(1)} s`)
  }
  const { trace, ...summary } = result
  if (values.out != null) {
    await writeFile(values.out, JSON.stringify(summary, null, 2) + '\n')
  }
  if (values.trace != null) {
    await writeFile(values.trace, JSON.stringify(trace) + '\n')
  }
}

if (import.meta.main) {
  await main()
}
