/**
 * Which addresses a browser peer may dial. Browsers refuse plain `ws://` and
 * private addresses by default, which keeps a public page from probing the
 * visitor's network. A page served from loopback or a private (LAN) host is
 * on that network already: it may dial `ws://` and private addresses, so a
 * phone that opened `http://192.168.1.20:4300/` joins the laptop's mesh.
 * Loopback stays reserved to pages served from loopback (development and
 * tests). The bootstrap nodes' own hosts are always allowed: the page was
 * told to dial them.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/** Where a host sits, for dialing purposes. */
export type HostScope = 'loopback' | 'private' | 'public'

export interface DialPolicyInit {
  /** The hostname the page was served from (`location.hostname`); undefined outside a page. */
  pageHost?: string
  /** The bootstrap multiaddrs the peer joins through. */
  bootstrap: readonly string[]
}

/** A libp2p `connectionGater.denyDialMultiaddr`: true refuses the dial. */
export function dialPolicy (init: DialPolicyInit): (ma: Multiaddr) => boolean {
  const page = scopeOfHostname(init.pageHost)
  const allowLoopback = page === 'loopback'
  const allowPrivate = page !== 'public'
  const bootstrapHosts = new Set(init.bootstrap.map(addr => hostOf(multiaddr(addr))))
  return ma => {
    const names = ma.getComponents().map(c => c.name)
    // a relayed address is judged by the relay's own address, dialed first
    if (names.includes('p2p-circuit') || bootstrapHosts.has(hostOf(ma))) {
      return false
    }
    const scope = scopeOfMultiaddr(ma)
    if (scope === 'loopback') {
      return !allowLoopback
    }
    if (scope === 'private') {
      return !allowPrivate
    }
    // a public host: only over TLS, as a public page must be
    return names.includes('ws') && !names.includes('tls') && !allowPrivate
  }
}

function hostOf (ma: Multiaddr): string | undefined {
  return ma.getComponents()[0]?.value
}

/** The scope of a multiaddr's host (its first component). */
export function scopeOfMultiaddr (ma: Multiaddr): HostScope {
  const host = ma.getComponents()[0]
  if (host == null || host.value == null) {
    return 'public'
  }
  if (host.name === 'ip4' || host.name === 'ip6' || host.name.startsWith('dns')) {
    return scopeOfHostname(host.value)
  }
  return 'public'
}

/** The scope of a hostname or IP literal (IPv6 with or without brackets). */
export function scopeOfHostname (hostname: string | undefined): HostScope {
  if (hostname == null || hostname === '') {
    return 'public'
  }
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost') || host.startsWith('127.') || host === '::1') {
    return 'loopback'
  }
  if (/^(10\.|192\.168\.|169\.254\.)/.test(host) || /^172\.(1[6-9]|2\d|3[01])\./.test(host) || /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./.test(host)) {
    return 'private'
  }
  if (host.endsWith('.local') || /^f[cd][0-9a-f]{2}:/.test(host) || host.startsWith('fe80:')) {
    return 'private'
  }
  return 'public'
}
