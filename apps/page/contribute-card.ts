/**
 * The Contribute card: consent that informs. The SDK's `<wasmesh-contribute>`
 * holds the visitor's choice (on/off, threads; half the cores by default)
 * and pauses by itself while the tab is hidden or on battery when asked to;
 * this card says plainly what sharing costs and lets the visitor pick those
 * pauses, remembered across visits.
 */
import { $ } from './dom.ts'
import type { ContributeElement, Peer } from '../../web/index.ts'

/** The element's own storage key: where it remembers the visitor's choice. */
const CHOICE_KEY = 'wasmesh-contribute'
const PAUSES_KEY = 'wasmesh-page-pauses'

const PAUSES = [
  { box: 'pause-hidden', attribute: 'pause-when-hidden' },
  { box: 'pause-battery', attribute: 'pause-on-battery' }
] as const

/**
 * `?contribute=N` (tests, kiosks, the benchmark) stands for a visitor who
 * already switched sharing on with N threads. Call before the element is
 * defined: it reads the choice once.
 */
export function preChoose (threads: number): void {
  try {
    localStorage.setItem(CHOICE_KEY, JSON.stringify({ enabled: true, threads }))
  } catch {
    // storage blocked: the visitor switches it on by hand
  }
}

/** Restores the pause choices and keeps them in step with the element. */
export function wirePauses (): void {
  const element = $('contribute')
  const stored = readPauses()
  for (const { box, attribute } of PAUSES) {
    const input = $<HTMLInputElement>(box)
    if (stored != null) {
      input.checked = stored.includes(attribute)
    }
    const apply = (): void => { element.toggleAttribute(attribute, input.checked) }
    apply()
    input.addEventListener('change', () => {
      apply()
      savePauses(PAUSES.filter(p => $<HTMLInputElement>(p.box).checked).map(p => p.attribute))
    })
  }
}

/** Hands the joined peer to the element: from now on it contributes when the visitor says so. */
export function attachContribute (peer: Peer): void {
  ($('contribute') as ContributeElement).peer = peer
}

function readPauses (): string[] | undefined {
  try {
    const value = JSON.parse(localStorage.getItem(PAUSES_KEY) ?? 'null') as unknown
    return Array.isArray(value) ? value.map(String) : undefined
  } catch {
    return undefined
  }
}

function savePauses (attributes: string[]): void {
  try {
    localStorage.setItem(PAUSES_KEY, JSON.stringify(attributes))
  } catch {
    // not remembered across visits, but applied now
  }
}
