/**
 * browser.ts — a real headless Chromium (Debian's `chromium`, driven by playwright-core over
 * its DevTools pipe) running inside a test namespace, so that it reaches a gateway's loopback
 * listener (the status page on 127.0.0.1:9464 of the gateway namespace).
 *
 * Contract: `launchIn(ns)` writes a two-line wrapper (`exec ip netns exec NS chromium "$@"`)
 * into a fresh temporary directory and launches it with the flags below and a fresh profile
 * (playwright's own temporary --user-data-dir); `close()` ends the browser and removes the
 * directory. Nothing reaches the network: no first-run, sync, component updates, background
 * networking or QUIC, and the namespace has no route out of the test topology anyway.
 * `watch(page)` collects everything that should never happen on the page (console errors
 * and warnings, uncaught exceptions, dialogs, failed requests, CSP violations).
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

export interface NsBrowser {
  readonly browser: Browser;
  close(): Promise<void>;
}

export async function launchIn(ns: string): Promise<NsBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/setup --with-test-tools does)`);
  if (!/^[A-Za-z0-9_.-]+$/.test(ns)) throw new Error(`namespace name ${JSON.stringify(ns)}`);
  const dir = mkdtempSync(join(tmpdir(), 'masq-chromium-'));
  const wrapper = join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: wrapper, headless: true, args: [...CHROMIUM_FLAGS], timeout: 30_000 });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Collect what must not happen on `page`; the returned array fills as it happens. */
export function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog (${d.type()}): ${d.message()}`);
    void d.dismiss();
  });
  page.on('requestfailed', (r) => {
    // A poll aborted because the page is being closed is not a fault of the page.
    if (!page.isClosed()) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return problems;
}
