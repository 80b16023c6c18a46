/**
 * `<wasmesh-contribute>`: the opt-in switch for a dApp's visitors to share
 * their device's spare compute. Registered only by defineContributeElement(),
 * so importing the SDK defines nothing.
 */
import type { Peer } from '../protocol/peer.ts'

/** What the element is doing: `off` until the visitor opts in, `waiting` for the peer, `paused` by a limit. */
export type ContributeState = 'off' | 'waiting' | 'paused' | 'on' | 'error'

/** The visitor's remembered choice. */
export interface ContributeChoice {
  enabled: boolean
  threads: number
}

/** Not in TypeScript's DOM lib: Chromium has it, Firefox and Safari do not. */
interface BatteryManager extends EventTarget {
  readonly charging: boolean
}

const DEFAULT_NAME = 'wasmesh-contribute'
const DEFAULT_STORAGE_KEY = 'wasmesh-contribute'
/** How long a change of the running count waits to be shown, gathering the changes that follow it. */
const CONTRIBUTION_RENDER_MS = 250

const TEMPLATE = `
<div class="box" part="box">
  <label class="switch" part="switch">
    <input type="checkbox" role="switch" id="toggle" aria-describedby="status">
    <span class="track" aria-hidden="true"><span class="thumb"></span></span>
    <span><slot name="label">Share this device's spare compute</slot></span>
  </label>
  <label class="threads" part="threads">
    <span>CPU threads</span>
    <input type="range" id="threads" min="1" step="1">
    <output id="threads-value" for="threads"></output>
  </label>
  <p class="status" id="status" part="status" role="status" aria-live="polite"></p>
</div>`

const CSS = `
:host { display: block; font: inherit; color: inherit; --wasmesh-accent: #6d5efc; }
:host([hidden]) { display: none; }
.box { display: grid; gap: .5rem; }
.switch { position: relative; display: inline-flex; align-items: center; gap: .6rem; cursor: pointer; }
/* the real checkbox, invisible, lies over the drawn track so it takes the clicks */
.switch input { position: absolute; z-index: 1; left: 0; opacity: 0; width: 2.5rem; height: 1.4rem; margin: 0; cursor: pointer; }
.track { flex: none; position: relative; width: 2.5rem; height: 1.4rem; border-radius: 1rem; background: #8888; transition: background .15s; }
.thumb { position: absolute; top: .2rem; left: .2rem; width: 1rem; height: 1rem; border-radius: 50%; background: #fff; transition: transform .15s; }
input:checked + .track { background: var(--wasmesh-accent); }
input:checked + .track .thumb { transform: translateX(1.1rem); }
input:focus-visible + .track { outline: 2px solid var(--wasmesh-accent); outline-offset: 2px; }
.threads { display: flex; align-items: center; gap: .6rem; }
.threads input { accent-color: var(--wasmesh-accent); }
.threads output { min-width: 3ch; font-variant-numeric: tabular-nums; }
.status { margin: 0; font-size: .875em; opacity: .8; }
@media (prefers-reduced-motion: reduce) { .track, .thumb { transition: none; } }
`

let sheet: CSSStyleSheet | undefined
let baseDefined = false

/** One sheet shared by every instance, made on first use so importing this module touches no DOM. */
function styles (): CSSStyleSheet {
  if (sheet == null) {
    sheet = new CSSStyleSheet()
    sheet.replaceSync(CSS)
  }
  return sheet
}

function cores (): number {
  return Math.max(1, navigator.hardwareConcurrency || 1)
}

function positiveInt (value: string | null): number | undefined {
  const n = Number(value)
  return value != null && Number.isInteger(n) && n >= 1 ? n : undefined
}

/**
 * A drop-in switch that lets a visitor share this device's spare compute.
 * Nothing runs until the visitor switches it on; the choice and the thread
 * count are remembered in localStorage, so a later visit resumes without
 * asking again. Register it with {@link defineContributeElement}, then give
 * it a peer: `element.peer = await createPeer(…)`.
 *
 * Attributes:
 * - `threads`: the thread count offered before the visitor picks one (default: half the CPU cores)
 * - `max-threads`: the most the visitor can pick (default: all cores)
 * - `pause-when-hidden`: stop contributing while the tab is hidden
 * - `pause-on-battery`: stop contributing while the device runs on battery
 *   (where the Battery Status API exists: Chromium; elsewhere it cannot tell and does not pause)
 * - `storage-key`: the localStorage key of the choice (default `wasmesh-contribute`)
 *
 * The `label` slot replaces the switch's text. A `change` event
 * (`CustomEvent<ContributeChoice>`) fires when the visitor changes something.
 */
export class ContributeElement extends HTMLElement {
  static readonly observedAttributes = ['threads', 'max-threads', 'pause-when-hidden', 'pause-on-battery', 'storage-key']

  readonly #toggle: HTMLInputElement
  readonly #threads: HTMLInputElement
  readonly #threadsValue: HTMLOutputElement
  readonly #status: HTMLElement
  #peer: Peer | undefined
  #choice: ContributeChoice | undefined
  #battery: BatteryManager | undefined
  #batteryPending = false
  #error: string | undefined
  #renderTimer: ReturnType<typeof setTimeout> | undefined
  // peer calls run one at a time, in the order the state changed
  #queue: Promise<void> = Promise.resolve()

  constructor () {
    super()
    const root = this.attachShadow({ mode: 'open' })
    root.adoptedStyleSheets = [styles()]
    root.innerHTML = TEMPLATE
    this.#toggle = root.getElementById('toggle') as HTMLInputElement
    this.#threads = root.getElementById('threads') as HTMLInputElement
    this.#threadsValue = root.getElementById('threads-value') as HTMLOutputElement
    this.#status = root.getElementById('status') as HTMLElement
    this.#toggle.addEventListener('change', () => { this.#choose({ enabled: this.#toggle.checked }) })
    this.#threads.addEventListener('input', () => { this.#threadsValue.value = this.#threads.value })
    this.#threads.addEventListener('change', () => { this.#choose({ threads: Number(this.#threads.value) }) })
  }

  /** The peer that contributes. Setting another one stops the previous one's contribution. */
  get peer (): Peer | undefined {
    return this.#peer
  }

  set peer (peer: Peer | undefined) {
    const previous = this.#peer
    if (previous === peer) {
      return
    }
    previous?.removeEventListener('contribution', this.#onContribution)
    if (previous != null) {
      this.#enqueue(async () => { await stopIfRunning(previous) })
    }
    this.#peer = peer
    this.#error = undefined
    if (this.isConnected) {
      peer?.addEventListener('contribution', this.#onContribution)
    }
    this.#sync()
  }

  /** The visitor switched contributing on (it may still be paused). */
  get enabled (): boolean {
    return this.#readChoice().enabled
  }

  /** Threads the visitor chose, or the default. */
  get threads (): number {
    return Math.min(this.#readChoice().threads, this.#maxThreads())
  }

  get state (): ContributeState {
    return this.#state().state
  }

  connectedCallback (): void {
    document.addEventListener('visibilitychange', this.#onVisibility)
    this.#peer?.addEventListener('contribution', this.#onContribution)
    this.#watchBattery()
    this.#sync()
  }

  disconnectedCallback (): void {
    document.removeEventListener('visibilitychange', this.#onVisibility)
    this.#battery?.removeEventListener('chargingchange', this.#onBattery)
    this.#battery = undefined
    const peer = this.#peer
    peer?.removeEventListener('contribution', this.#onContribution)
    // without the element the visitor has no way to switch it off
    if (peer != null) {
      this.#enqueue(async () => { await stopIfRunning(peer) })
    }
    this.#render()
  }

  attributeChangedCallback (name: string): void {
    if (name === 'storage-key') {
      this.#choice = undefined
    }
    if (name === 'pause-on-battery' && this.isConnected) {
      this.#watchBattery()
    }
    this.#sync()
  }

  #maxThreads (): number {
    return positiveInt(this.getAttribute('max-threads')) ?? cores()
  }

  #storageKey (): string {
    return this.getAttribute('storage-key') ?? DEFAULT_STORAGE_KEY
  }

  #readChoice (): ContributeChoice {
    if (this.#choice != null) {
      return this.#choice
    }
    const fallback = { enabled: false, threads: positiveInt(this.getAttribute('threads')) ?? Math.max(1, Math.floor(cores() / 2)) }
    try {
      const stored = JSON.parse(localStorage.getItem(this.#storageKey()) ?? 'null') as Partial<ContributeChoice> | null
      return {
        enabled: stored?.enabled === true,
        threads: positiveInt(String(stored?.threads)) ?? fallback.threads
      }
    } catch {
      // storage blocked (privacy settings, sandboxed frame) or garbage in it: ask again
      return fallback
    }
  }

  /** The visitor changed something: remember it, tell the page, apply it. */
  #choose (change: Partial<ContributeChoice>): void {
    const choice = { ...this.#readChoice(), ...change }
    this.#choice = choice
    try {
      localStorage.setItem(this.#storageKey(), JSON.stringify(choice))
    } catch {
      // not remembered across visits, but still honoured now
    }
    this.#error = undefined
    this.dispatchEvent(new CustomEvent<ContributeChoice>('change', { detail: { ...choice }, bubbles: true }))
    this.#sync()
  }

  #pausedBecause (): string | undefined {
    if (this.hasAttribute('pause-when-hidden') && document.visibilityState === 'hidden') {
      return 'while this tab is hidden'
    }
    if (this.hasAttribute('pause-on-battery') && this.#battery != null && !this.#battery.charging) {
      return 'while on battery'
    }
    return undefined
  }

  #state (): { state: ContributeState, want?: number, why?: string } {
    if (!this.isConnected || !this.enabled) {
      return { state: 'off' }
    }
    if (this.#error != null) {
      return { state: 'error' }
    }
    const why = this.#pausedBecause()
    if (why != null) {
      return { state: 'paused', why }
    }
    if (this.#peer?.status !== 'started' || this.#batteryPending) {
      return { state: 'waiting' }
    }
    const want = this.threads
    return { state: this.#peer.contribution?.threads === want ? 'on' : 'waiting', want }
  }

  /** Brings the peer to what the state asks for, and redraws. */
  #sync (): void {
    this.#render()
    const peer = this.#peer
    if (peer == null || this.#batteryPending) {
      return
    }
    this.#enqueue(async () => {
      if (peer !== this.#peer || peer.status !== 'started') {
        return
      }
      const { state, want } = this.#state()
      try {
        if (want != null) {
          await peer.contribute({ threads: want })
        } else if (state !== 'error') {
          await stopIfRunning(peer)
        }
      } catch (err) {
        this.#error = err instanceof Error ? err.message : String(err)
        await stopIfRunning(peer).catch(() => {})
      }
      this.#render()
    })
  }

  #enqueue (task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task, task)
  }

  /** Writes only what changed: an unchanged write still costs the page a style and layout pass. */
  #render (): void {
    clearTimeout(this.#renderTimer)
    this.#renderTimer = undefined
    const { state, why } = this.#state()
    const max = this.#maxThreads()
    const threads = this.threads
    const enabled = this.enabled
    if (this.#toggle.checked !== enabled) {
      this.#toggle.checked = enabled
    }
    if (this.#threads.max !== String(max)) {
      this.#threads.max = String(max)
    }
    // a redraw must not yank the slider from under the visitor's finger
    if (this.shadowRoot?.activeElement !== this.#threads && this.#threads.value !== String(threads)) {
      this.#threads.value = String(threads)
    }
    if (this.#threads.disabled !== (max === 1)) {
      this.#threads.disabled = max === 1
    }
    if (this.#threads.getAttribute('aria-valuetext') !== `${threads} of ${max}`) {
      this.#threads.setAttribute('aria-valuetext', `${threads} of ${max}`)
    }
    if (this.#threadsValue.value !== String(threads)) {
      this.#threadsValue.value = String(threads)
    }
    if (this.#status.dataset.state !== state) {
      this.#status.dataset.state = state
    }
    const text = this.#describe(state, why)
    if (this.#status.textContent !== text) {
      this.#status.textContent = text
    }
  }

  #describe (state: ContributeState, why: string | undefined): string {
    switch (state) {
      case 'off':
        return 'Off: nothing runs on this device unless you switch this on.'
      case 'waiting':
        return 'Starting…'
      case 'paused':
        return `Paused ${why ?? ''}.`
      case 'error':
        return `Could not contribute: ${this.#error ?? 'unknown error'}`
      case 'on': {
        const running = this.#peer?.contribution?.running ?? 0
        return `Running jobs for the network on ${this.threads} thread${this.threads === 1 ? '' : 's'} (${running} now).`
      }
    }
  }

  #watchBattery (): void {
    const nav = navigator as Navigator & { getBattery?: () => Promise<BatteryManager> }
    if (!this.hasAttribute('pause-on-battery') || this.#battery != null || this.#batteryPending || nav.getBattery == null) {
      return
    }
    // hold back until the battery state is known, so a device on battery never starts and stops at once
    this.#batteryPending = true
    nav.getBattery().then(battery => {
      if (this.isConnected) {
        this.#battery = battery
        battery.addEventListener('chargingchange', this.#onBattery)
      }
    }, () => {
      // denied (e.g. by a permissions policy): we cannot tell, so we do not pause
    }).finally(() => {
      this.#batteryPending = false
      this.#sync()
    })
  }

  readonly #onVisibility = (): void => { this.#sync() }
  readonly #onBattery = (): void => { this.#sync() }
  /** The running count changes twice per job: a tab serving jobs nonstop shows it a few times a second, not per job. */
  readonly #onContribution = (): void => {
    this.#renderTimer ??= setTimeout(() => { this.#render() }, CONTRIBUTION_RENDER_MS)
  }
}

async function stopIfRunning (peer: Peer): Promise<void> {
  if (peer.contribution != null && peer.status === 'started') {
    await peer.stopContributing()
  }
}

/**
 * Registers `<wasmesh-contribute>` (or `name`) and returns its class. Safe to
 * call more than once.
 */
export function defineContributeElement (name = DEFAULT_NAME): typeof ContributeElement {
  const existing = customElements.get(name)
  if (existing != null) {
    return existing as typeof ContributeElement
  }
  // a constructor can be registered under one name only
  const element = baseDefined ? class extends ContributeElement {} : ContributeElement
  customElements.define(name, element)
  baseDefined = true
  return element
}

declare global {
  interface HTMLElementTagNameMap {
    'wasmesh-contribute': ContributeElement
  }
}
