/* global process, console, URL */
// Plain JavaScript on purpose: it must run on the old Node it rejects (which cannot load .ts).
// Runs before `npm start` and `npm test` (prestart, pretest); node/node-version.ts checks the same for the package.
import { readFileSync } from 'node:fs'

const required = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node.replace(/^>=\s*/, '')
const [major, minor] = process.versions.node.split('.').map(Number)
const [minMajor, minMinor = 0] = required.split('.').map(Number)
if (major < minMajor || (major === minMajor && minor < minMinor)) {
  console.error(`wasmesh needs Node.js >= ${required} (this is ${process.versions.node}): install Node 24 LTS (https://nodejs.org, \`nvm install 24\`, or \`npm install --global node@24\`).`)
  process.exit(1)
}
