/**
 * The connection status in the header, and the banner for what keeps the
 * page from working: written for visitors (what happened, what they can
 * do), with the developer's details folded in a `<details>`.
 */
import { $, el } from './dom.ts'

export function setStatus (state: 'loading' | 'connecting' | 'connected' | 'error', text: string): void {
  $('net-status').dataset.state = state
  $('net-status-text').textContent = text
}

/** A problem as a visitor reads it. */
export interface Problem {
  /** What happened, in a sentence. */
  title: string
  /** What the visitor can do about it. */
  advice: string
  /** For whoever runs the network: the error's name, message and hint. */
  details?: string
}

/** Shows `problem` in the banner, or hides the banner. */
export function showProblem (problem: Problem | undefined): void {
  const banner = $('banner')
  banner.hidden = problem == null
  if (problem == null) {
    banner.replaceChildren()
    return
  }
  const parts: HTMLElement[] = [el('strong', 'banner-title', problem.title), el('p', 'banner-advice', problem.advice)]
  if (problem.details != null && problem.details !== '') {
    const details = el('details', 'banner-details')
    details.append(el('summary', '', 'Details for developers'), el('pre', 'mono', problem.details))
    parts.push(details)
  }
  banner.replaceChildren(...parts)
}

/** An error's developer details: its name, message and hint, leaving out whatever is missing. */
export function errorDetails (err: unknown): string {
  if (!(err instanceof Error)) {
    return String(err)
  }
  const hint = (err as Error & { hint?: unknown }).hint
  return [`${err.name}: ${err.message}`, typeof hint === 'string' && hint !== '' ? `Hint: ${hint}` : ''].filter(line => line !== '').join('\n')
}

/** The visitor's version of why the page could not join the network. */
export function joinProblem (err: unknown): Problem {
  const name = err instanceof Error ? err.name : ''
  if (name === 'BootstrapError') {
    return {
      title: 'The network could not be reached.',
      advice: 'Its meeting point (the bootstrap node this page was given) did not answer: it may be restarting or down. Check your connection and reload in a minute.',
      details: errorDetails(err)
    }
  }
  return {
    title: 'This page could not join the network.',
    advice: 'Reload the page. If it happens again, the network may be misconfigured: tell whoever sent you the link.',
    details: errorDetails(err)
  }
}
