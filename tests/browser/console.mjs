// Drives the operator console in headless Chromium as an operator would, with a virtual
// passkey authenticator (CDP), and reports what it saw as JSON.
//   node console.mjs <console base> <public base> <admin token> <artifact dir> <operator invite URL> <receiver base> [join]
// The journey: become the first operator from the invite the CLI printed; add a user from the
// console and get them paid; watch the overview's counters and chart move without a reload;
// find the failed webhook among the dead letters and redeliver it once the receiver works;
// run a prune dry run; download a backup. Every page is screenshot at phone and desktop
// width (and dark), weighed, and checked with axe-core. With `join`, it stops after joining.
import { chromium } from 'playwright-core'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const axePath = require.resolve('axe-core/axe.min.js')
const [consoleBase, publicBase, token, artifacts, inviteUrl, receiver, mode] = process.argv.slice(2)
const report = { steps: [], axe: {}, bytes: {} }
const step = (text) => report.steps.push(text)
const admin = (path, init = {}) =>
  fetch(`${consoleBase}/admin/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) },
  }).then(async (r) => { if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`); return r.json() })
const sleep = (ms) => new Promise((done) => setTimeout(done, ms))

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
})
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true })
  const page = await context.newPage()
  const consoleErrors = []
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`) })
  page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`))
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  })

  // Each page: screenshots (desktop, phone, dark), its weight, and axe-core (light and dark)
  // in a second context that lets the audit script in (the CSP rightly keeps it out). Pages
  // that answer a form are audited as they are, served again from a snapshot.
  const auditor = await browser.newContext({ bypassCSP: true })
  async function look(name) {
    await page.screenshot({ path: `${artifacts}/console-${name}-desktop.png`, fullPage: true })
    await page.setViewportSize({ width: 360, height: 780 })
    await page.screenshot({ path: `${artifacts}/console-${name}-phone.png`, fullPage: true })
    report[`${name}Overflows`] = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
    if (report[`${name}Overflows`]) {
      // What sticks out, to say where to look.
      report[`${name}Wide`] = await page.evaluate(() => [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .filter((e) => { for (let p = e.parentElement; p; p = p.parentElement) if (getComputedStyle(p).overflowX !== 'visible') return false; return true })
        .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`))
    }
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.screenshot({ path: `${artifacts}/console-${name}-phone-dark.png`, fullPage: true })
    await page.emulateMedia({ colorScheme: 'light' })
    await page.setViewportSize({ width: 1280, height: 900 })
    const html = await page.content()
    report.bytes[name] = Buffer.byteLength(html)
    await auditor.clearCookies()
    await auditor.addCookies(await context.cookies())
    const audit = await auditor.newPage()
    const snapshot = `${consoleBase}/__snapshot-${name}`
    await audit.route(snapshot, (route) => route.fulfill({ body: html, contentType: 'text/html' }))
    const violations = []
    for (const scheme of ['light', 'dark']) {
      await audit.emulateMedia({ colorScheme: scheme })
      await audit.goto(snapshot)
      await audit.addScriptTag({ path: axePath })
      const result = await audit.evaluate(() => window.axe.run(document))
      for (const v of result.violations) violations.push(`${scheme}: ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
    }
    await audit.close()
    report.axe[name] = violations
  }

  // 1. The first operator, from the URL `rayo operator invite` printed.
  await page.goto(`${consoleBase}/admin/login`)
  await look('login')
  await page.goto(inviteUrl)
  await look('join')
  await page.fill('#join-name', 'ana')
  await Promise.all([page.waitForURL(`${consoleBase}/admin/`), page.click('#join-passkey')])
  report.consoleCookie = (await context.cookies()).find((c) => c.name === 'rayo_console')
  report.csrf = await page.getAttribute('main', 'data-csrf')
  step('became the first operator with a passkey')
  // The invite worked once: opening it again, or starting with it, is refused.
  report.reusedInvitePage = (await context.request.get(inviteUrl)).status()
  const again = await context.request.post(`${consoleBase}/admin/join/start`, { data: { token: inviteUrl.split('/').pop(), name: 'eve' } })
  report.reusedInviteStart = { status: again.status(), body: await again.json() }
  if (mode === 'join') {
    console.log(JSON.stringify(report))
    process.exit(0)
  }
  await look('overview')
  await page.keyboard.press('Tab')
  report.firstFocus = await page.evaluate(() => document.activeElement.textContent.trim())

  // 2. A user, added from the console, with text a browser must not run.
  await page.goto(`${consoleBase}/admin/users`)
  await look('users')
  await page.fill('#new-name', 'carol')
  await page.fill('#new-description', "Carol's <img src=x onerror=alert(1)> tips")
  await Promise.all([page.waitForURL(/\/admin\/users\/carol\?done=added$/), page.click('#add-user button[type=submit]')])
  await page.fill('#comment_allowed', '140')
  await page.fill('#payer_data', 'name')
  await page.fill('#webhook_url', `${receiver}/hook`)
  await Promise.all([page.waitForURL(/done=saved$/), page.click('#user-settings button[type=submit]')])
  report.userNotice = (await page.locator('.notice').textContent()).trim()
  await look('user')
  step('added carol and set her webhook')

  // 3. Paid, watched on the overview: no reload, the counters and the chart move.
  await page.goto(`${consoleBase}/admin/`)
  await page.evaluate(() => { window.stillThisPage = true })
  const paidBar = () => page.evaluate(() => Number([...document.querySelectorAll('#chart-invoices rect.paid')].pop().getAttribute('height')))
  report.paidTodayBefore = (await page.locator('#paid-today').textContent()).trim()
  report.paidBarBefore = await paidBar()
  const comment = '<script>alert(1)</script> thanks'
  const payer = JSON.stringify({ name: '<b>Mallory</b>' })
  const answer = await fetch(`${publicBase}/lnurlp/carol/callback?amount=21000&comment=${encodeURIComponent(comment)}&payerdata=${encodeURIComponent(payer)}`).then((r) => r.json())
  if (!answer.pr) throw new Error(`the callback: ${JSON.stringify(answer)}`)
  const hash = answer.verify.split('/').slice(-2)[0]
  report.hash = hash
  await admin(`/dev/settle/${hash}`, { method: 'POST' })
  await page.waitForFunction(() => document.querySelector('#paid-today').textContent.trim() === '1', null, { timeout: 20000 })
  report.reloadedWhileWaiting = !(await page.evaluate(() => window.stillThisPage === true))
  report.paidTodayAfter = (await page.locator('#paid-today').textContent()).trim()
  report.satsTodayAfter = (await page.locator('#sats-today').textContent()).trim()
  report.paidBarAfter = await paidBar()
  report.madeToday = (await page.locator('#made-today').textContent()).trim()
  report.chartSummary = await page.locator('#chart-invoices desc').textContent()
  await look('overview-paid')
  step('paid carol and watched the overview move')

  // 4. The webhook failed (the receiver answers 503 with markup): find the dead letter,
  // make the receiver work, redeliver.
  let dead = 0
  for (let i = 0; i < 100 && dead === 0; i++) {
    await page.goto(`${consoleBase}/admin/deliveries?state=dead`)
    dead = await page.locator('#deliveries tbody tr').count()
    if (dead === 0) await sleep(300)
  }
  report.deadLetters = dead
  report.deadOutcome = (await page.locator('#deliveries tbody tr .outcome').first().textContent()).trim()
  report.injected = await page.evaluate(() => document.querySelectorAll('main script, main img[src="x"], main b').length)
  await look('dead-letters')
  await fetch(`${receiver}/control/up`, { method: 'POST' })
  await Promise.all([page.waitForURL(/done=redelivered$/), page.click('#deliveries tbody tr button')])
  let state = ''
  for (let i = 0; i < 100 && state !== 'delivered'; i++) {
    state = (await page.locator('.event .state').first().textContent()).trim()
    if (state !== 'delivered') { await sleep(200); await page.reload() }
  }
  report.redeliveredState = state
  await look('delivery')
  step('found the dead letter and redelivered it to a working receiver')

  // The invoice, found by user, and its detail with events and deliveries.
  await page.goto(`${consoleBase}/admin/invoices?user=carol&status=paid`)
  report.invoiceRows = await page.locator('#invoices tbody tr').count()
  report.invoiceRowText = await page.locator('#invoices tbody tr').first().textContent()
  await look('invoices')
  await page.goto(`${consoleBase}/admin/invoices/${hash}`)
  report.invoiceEvents = await page.locator('.event').count()
  await look('invoice')

  // The invoice list follows too: a second payment appears without a reload.
  await page.goto(`${consoleBase}/admin/invoices?user=carol`)
  await page.evaluate(() => { window.stillThisPage = true })
  const second = await fetch(`${publicBase}/lnurlp/carol/callback?amount=5000`).then((r) => r.json())
  await admin(`/dev/settle/${second.verify.split('/').slice(-2)[0]}`, { method: 'POST' })
  await page.waitForFunction(() => document.querySelectorAll('#invoices tbody tr.paid').length === 2, null, { timeout: 20000 })
  report.liveInvoiceRows = await page.locator('#invoices tbody tr').count()
  report.invoicesReloaded = !(await page.evaluate(() => window.stillThisPage === true))

  // 5. A prune dry run.
  await page.goto(`${consoleBase}/admin/maintenance`)
  await look('maintenance')
  await page.click('#prune-dry-run button')
  await page.waitForSelector('#pruned')
  report.dryRun = (await page.locator('#pruned').textContent()).trim()
  await look('prune-dry-run')
  step('ran a prune dry run')

  // 6. A backup, downloaded as a browser does.
  await page.goto(`${consoleBase}/admin/maintenance`)
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#backup')])
  report.backupFile = `${artifacts}/console-backup.json`
  await download.saveAs(report.backupFile)
  step('downloaded a backup')

  // The rest of the console.
  await page.goto(`${consoleBase}/admin/backends`)
  await page.click('#check-backends button')
  await page.waitForSelector('.verdict')
  report.backendVerdict = (await page.locator('.verdict').first().textContent()).trim()
  await look('backends')
  await page.goto(`${consoleBase}/admin/prices`)
  report.pricesText = await page.locator('main').innerText()
  await look('prices')
  await page.goto(`${consoleBase}/admin/operators`)
  await page.click('#invite-operator button')
  report.operatorInvite = (await page.locator('#secret').textContent()).trim()
  await look('operator-invite')
  await page.goto(`${consoleBase}/admin/operators`)
  report.audit = await page.$$eval('#audit tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent.trim())))
  await look('operators')
  await page.goto(`${consoleBase}/admin/login`)
  report.signedInLoginGoesTo = new URL(page.url()).pathname
  step('looked at backends, prices and operators')

  // Signed out, then in again with the passkey: a new session, whose cookie the test keeps.
  await Promise.all([page.waitForURL(`${consoleBase}/admin/login`), page.click('header form button[type=submit]')])
  report.afterSignOut = new URL(page.url()).pathname
  await Promise.all([page.waitForURL(`${consoleBase}/admin/`), page.click('#passkey-login')])
  const again2 = (await context.cookies()).find((c) => c.name === 'rayo_console')
  report.newSessionAtSignIn = again2.value !== report.consoleCookie.value
  report.consoleCookie = again2
  report.csrf = await page.getAttribute('main', 'data-csrf')
  step('signed out, and in again with the passkey')
  report.consoleErrors = consoleErrors
} finally {
  await browser.close()
}
console.log(JSON.stringify(report))
