/** The connection status in the header, and the banner for what keeps the page from working. */
import { $ } from './dom.ts'

export function setStatus (state: 'loading' | 'connecting' | 'connected' | 'error', text: string): void {
  $('status').dataset.state = state
  $('status-text').textContent = text
}

export function showBanner (message: string | undefined): void {
  const banner = $('banner')
  banner.hidden = message == null
  banner.textContent = message ?? ''
}
