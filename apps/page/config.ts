/**
 * What the page is told by its URL and its host: `?bootstrap=<multiaddr>`
 * (repeatable) overrides config.json; `?contribute=N` switches contributing
 * on with N threads.
 */

/** The bootstrap addresses a browser can dial; throws with what to do when there are none. */
export async function bootstrapAddresses (): Promise<string[]> {
  const dialable = (await bootstrapList()).filter(browserDialable)
  if (dialable.length === 0) {
    throw new Error('none of the bootstrap addresses can be dialed from a browser (they need /ws or /wss)')
  }
  return dialable
}

/** `?contribute=N`: the threads to contribute with from the start, or undefined. */
export function contributeThreads (): number | undefined {
  const param = new URLSearchParams(location.search).get('contribute')
  return param != null ? Math.max(1, Math.floor(Number(param)) || 1) : undefined
}

async function bootstrapList (): Promise<string[]> {
  const params = new URLSearchParams(location.search)
  const given = params.getAll('bootstrap').flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
  if (given.length > 0) {
    return given
  }
  let response: Response
  try {
    response = await fetch(new URL('config.json', location.href), { cache: 'no-store' })
  } catch (err) {
    throw new Error(`could not load config.json: ${(err as Error).message}. Pass ?bootstrap=<multiaddr>.`, { cause: err })
  }
  if (!response.ok) {
    throw new Error(`config.json is missing (HTTP ${response.status}): serve the page with \`wasmesh bootstrap --http-port\`, or pass ?bootstrap=<multiaddr>.`)
  }
  const config = await response.json() as { bootstrap?: unknown }
  const list = Array.isArray(config.bootstrap) ? config.bootstrap.map(String) : []
  if (list.length === 0) {
    throw new Error('config.json lists no bootstrap node; pass ?bootstrap=<multiaddr>.')
  }
  return list
}

/** Browsers can only dial WebSocket (and WebRTC/WebTransport) addresses. */
function browserDialable (addr: string): boolean {
  return /\/(ws|wss|tls\/ws|webtransport|webrtc-direct)(\/|$)/.test(addr)
}
