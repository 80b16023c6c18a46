/**
 * The wasmesh page: an app on the public SDK (web/index.ts, what the package
 * exports for browsers). This module composes the cards; each card listens to
 * the peer events it shows and draws through one RenderLoop. It stays small:
 * libp2p, Helia and the runtime load lazily with the SDK, so the first paint
 * does not wait for them.
 */
import { Activity } from './activity.ts'
import { enableApps, wireApps } from './apps-panel.ts'
import { BatchCard } from './batch-card.ts'
import { bootstrapAddresses, contributeThreads } from './config.ts'
import { attachContribute, preChoose, wirePauses } from './contribute-card.ts'
import { $ } from './dom.ts'
import { MeshView } from './mesh-view.ts'
import { listPeers } from './peer-list.ts'
import { RenderLoop } from './render.ts'
import { RunCard } from './run-card.ts'
import { RunForm } from './run-form.ts'
import { SelfCard, showJoining } from './self-card.ts'
import { ServedHistory } from './served-history.ts'
import { StorageCard } from './storage-card.ts'
import { recordAdvert, type PageState } from './state.ts'
import { errorDetails, joinProblem, setStatus, showProblem, type Problem } from './status.ts'
import type * as Sdk from '../../web/index.ts'

declare global {
  interface Window { wasmesh: PageState }
}

const state: PageState = { timings: {}, adverts: [] }
window.wasmesh = state

async function main (): Promise<void> {
  const form = new RunForm()
  wireApps(() => state.peer, app => { state.app = app })
  const contribute = contributeThreads()
  if (contribute != null) {
    preChoose(contribute)
  }
  wirePauses()

  setStatus('connecting', 'Connecting…')
  let bootstrap: string[]
  try {
    bootstrap = await bootstrapAddresses()
  } catch (err) {
    fail({
      title: 'This page does not know which network to join.',
      advice: 'The link you opened lacks the network\'s address. Ask whoever shared it for the full link.',
      details: errorDetails(err)
    })
    return
  }
  $('bootstrap').textContent = bootstrap[0] ?? '—'
  $('bootstrap').title = bootstrap.join('\n')

  let sdk: typeof Sdk
  try {
    sdk = await import('../../web/index.ts')
    sdk.defineContributeElement()
    state.timings.sdkLoaded = performance.now()
  } catch (err) {
    fail({
      title: 'Part of this page did not load.',
      advice: 'Check your connection and reload the page.',
      details: errorDetails(err)
    })
    return
  }
  let peer: Sdk.Peer
  try {
    peer = await sdk.createPeer({
      bootstrap,
      onCreated: created => {
        showJoining(created, state.timings)
        // from before the join, so the benchmark sees the first advert too
        created.addEventListener('advert', () => { recordAdvert(state) })
      }
    })
  } catch (err) {
    fail(joinProblem(err))
    return
  }
  state.peer = peer
  window.addEventListener('pagehide', () => { void peer.stop() })
  setStatus('connected', 'Connected')

  const render = new RenderLoop()
  listPeers(peer, render)
  const run = new RunCard(peer, form, result => { state.lastResult = result })
  const batches = new BatchCard(peer, form, batch => { state.batch = batch }, render)
  form.onSubmit = mode => { void (mode === 'batch' ? batches.start() : run.run()) }
  enableApps()
  new SelfCard(peer, state.timings, render)
  attachContribute(peer)
  state.mesh = new MeshView(peer, bootstrap, render)
  state.served = new ServedHistory(peer, render)
  state.storage = new StorageCard(peer).view
  const activity = new Activity(peer)
  state.activity = activity.series
  // uPlot loads after the join, off the first paint's path
  void import('./activity-chart.ts').then(({ drawActivity }) => { drawActivity(activity, $('chart-jobs'), $('chart-cpu')) })
  await batches.resumeStored()
}

function fail (problem: Problem): void {
  setStatus('error', 'Offline')
  showProblem(problem)
  state.error = `${problem.title} ${problem.details ?? ''}`.trim()
}

void main()
