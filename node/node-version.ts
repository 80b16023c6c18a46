/**
 * The oldest Node.js wasmesh runs on, as in package.json `engines`: libp2p 3
 * needs `Promise.withResolvers` and a global `WebSocket`, Helia 7's undici
 * needs 22.19. Older versions load the package and then fail far from the
 * cause, so the entry points check first (scripts/check-node.js does the same
 * for the repository's npm scripts).
 */
export const MIN_NODE_VERSION = '22.19.0'

/** One line saying which Node is needed and how to get it, or undefined when this one will do. */
export function unsupportedNodeMessage (version: string = process.versions.node): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number)
  const [minMajor = 0, minMinor = 0] = MIN_NODE_VERSION.split('.').map(Number)
  if (major > minMajor || (major === minMajor && minor >= minMinor)) {
    return undefined
  }
  return `wasmesh needs Node.js >= ${MIN_NODE_VERSION} (this is ${version}): install Node 24 LTS (https://nodejs.org, \`nvm install 24\`, or \`npm install --global node@24\`).`
}
