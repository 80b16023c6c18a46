/**
 * The Chromium the browser tests drive: Debian's when present (Playwright's
 * own download cannot run on machines without internet access), else
 * Playwright's. Run before `npm test` (pretest) so a machine with neither
 * hears it in one line at once, not from the first browser test minutes later.
 */
import { existsSync } from 'node:fs'
import { chromium } from '@playwright/test'

const SYSTEM_CHROMIUM = '/usr/bin/chromium'

export const NO_CHROMIUM = 'The browser tests need Chromium: install the system one (`sudo apt-get install chromium`) or Playwright\'s (`npx playwright install chromium`).'

/** The system Chromium's path; undefined means Playwright's own, if it is installed (see `hasChromium`). */
export const systemChromium: string | undefined = existsSync(SYSTEM_CHROMIUM) ? SYSTEM_CHROMIUM : undefined

export function hasChromium (): boolean {
  return systemChromium != null || existsSync(chromium.executablePath())
}

if (import.meta.main && !hasChromium()) {
  console.error(NO_CHROMIUM)
  process.exit(1)
}
