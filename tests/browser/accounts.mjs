// Drives the account pages in headless Chromium as a person would, with a virtual passkey
// authenticator (CDP), and reports what it saw as JSON.
//   node accounts.mjs <base-url on localhost> <admin-token> <artifact-dir>
// The journey: open an invite; pick a name and register a passkey; change the description
// and see the payRequest change; get paid and watch the payment appear without a reload; sign
// out; sign in with the passkey; add a second passkey and remove the first. Every page is
// screenshot at phone and desktop width, light and dark, and checked with axe-core.
import { chromium } from 'playwright-core'
import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'

const require = createRequire(import.meta.url)
const axePath = require.resolve('axe-core/axe.min.js')
const [base, token, artifacts, mode, who] = process.argv.slice(2)
// The independent wallet (tests/nostr-tools/lnurl-auth.mjs): scans, signs, answers JSON.
const wallet = (seed, scanned, forged) =>
  JSON.parse(execFileSync('node', ['lnurl-auth.mjs', seed, scanned, ...(forged ? [forged] : [])], { cwd: '../nostr-tools' }).toString())
const report = { steps: [], axe: {}, bytes: {} }
const admin = (path, init = {}) =>
  fetch(`${base}/admin/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) },
  }).then(async (r) => { if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`); return r.json() })

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
})
const step = (text) => report.steps.push(text)
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 780 } })
  const page = await context.newPage()
  const consoleErrors = []
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`) })
  page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`))
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  })

  // Each page: screenshots (phone and desktop, light and dark), its weight, and axe-core in a
  // second context that lets the audit script in (the pages' CSP rightly keeps it out).
  const auditor = await browser.newContext({ bypassCSP: true })
  async function look(name) {
    await page.screenshot({ path: `${artifacts}/account-${name}-phone.png`, fullPage: true })
    await page.setViewportSize({ width: 1280, height: 900 })
    await page.screenshot({ path: `${artifacts}/account-${name}-desktop.png`, fullPage: true })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.screenshot({ path: `${artifacts}/account-${name}-dark.png`, fullPage: true })
    await page.emulateMedia({ colorScheme: 'light' })
    await page.setViewportSize({ width: 360, height: 780 })
    const html = await page.content()
    report.bytes[name] = Buffer.byteLength(html)
    // Axe in light and dark, with this person's cookies, without changing anything.
    await auditor.clearCookies()
    await auditor.addCookies(await context.cookies())
    const audit = await auditor.newPage()
    const violations = []
    for (const scheme of ['light', 'dark']) {
      await audit.emulateMedia({ colorScheme: scheme })
      await audit.goto(page.url())
      await audit.addScriptTag({ path: axePath })
      const result = await audit.evaluate(() => window.axe.run(document))
      for (const v of result.violations) violations.push(`${scheme}: ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
    }
    await audit.close()
    report.axe[name] = violations
    // Without horizontal scrolling at 360 px.
    report[`${name}Overflows`] = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
  }

  // 1. An invite. A session cookie planted beforehand (fixation) must not survive sign-in.
  // Where sign-up is open (mode "open"), /join needs no invite.
  const invite = mode === 'open' ? { url: `${base}/join` } : await admin('/invites', { method: 'POST', body: JSON.stringify({}) })
  report.inviteUrl = invite.url
  const joinUrl = invite.url.replace(/^http:\/\/[^/]+/, base)
  await context.addCookies([{ name: 'rayo_session', value: 'planted-by-an-attacker', url: base }])
  await page.goto(joinUrl)
  report.joinTitle = await page.title()
  await look('join')
  step('opened the invite')

  // 2. A name and a passkey.
  await page.fill('#join-name', who || 'Alice')
  await Promise.all([page.waitForURL(`${base}/account`), page.click('#join-passkey')])
  report.address = (await page.locator('#address').textContent()).trim()
  report.passkeysAfterJoin = await page.locator('#passkeys li').count()
  step('picked a name and registered a passkey')
  report.sessionCookie = (await context.cookies()).find((c) => c.name === 'rayo_session')
  if (mode === 'join' || mode === 'open') {
    console.log(JSON.stringify(report))
    process.exit(0)
  }
  await look('account')

  // 3. The description, and the payRequest that shows it.
  await page.fill('#description', 'Tips for Alice <b>& friends</b>')
  await page.fill('#comment_allowed', '100')
  await Promise.all([page.waitForURL(/done=profile/), page.click('form[action="/account/profile"] button[type=submit]')])
  const payRequest = await fetch(`${base}/.well-known/lnurlp/alice`).then((r) => r.json())
  report.metadata = payRequest.metadata
  step('changed the description and saw the payRequest change')

  // 4. A payment through the callback, paid, and seen without a reload.
  let navigations = 0
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++ })
  const callback = new URL(payRequest.callback)
  callback.searchParams.set('amount', '21000')
  callback.searchParams.set('comment', 'for <script>coffee</script>')
  const made = await fetch(callback).then((r) => r.json())
  report.invoice = made.pr
  const [listed] = await admin('/invoices?user=alice&limit=1')
  report.paymentHash = listed.payment_hash
  await admin(`/dev/settle/${listed.payment_hash}`, { method: 'POST' })
  const row = page.locator(`#payments tr[data-hash="${listed.payment_hash}"].paid`)
  await row.waitFor({ state: 'visible', timeout: 15000 })
  report.liveRow = (await row.textContent()).replace(/\s+/g, ' ').trim()
  report.reloadsWhileWaiting = navigations
  await page.screenshot({ path: `${artifacts}/account-paid-live-phone.png`, fullPage: true })
  step('was paid and watched the payment appear without reloading')

  // 5. Sign out.
  await Promise.all([page.waitForURL(`${base}/login`), page.click('form[action="/logout"] button')])
  await look('login')
  step('signed out')

  // 6. Sign in with the passkey.
  await Promise.all([page.waitForURL(`${base}/account`), page.click('#passkey-login')])
  step('signed in with the passkey')

  // The same passkey on a second browser (its credential copied to that browser's
  // authenticator): two sessions, listed; the first ends the second, which then opens nothing.
  const other = await browser.newContext()
  const otherPage = await other.newPage()
  const otherCdp = await other.newCDPSession(otherPage)
  await otherCdp.send('WebAuthn.enable')
  const { authenticatorId: otherAuthenticator } = await otherCdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  })
  for (const credential of (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials) {
    await otherCdp.send('WebAuthn.addCredential', { authenticatorId: otherAuthenticator, credential })
  }
  await otherPage.goto(`${base}/login`)
  await Promise.all([otherPage.waitForURL(`${base}/account`), otherPage.click('#passkey-login')])
  await page.reload()
  report.sessionsListed = await page.locator('#sessions li').count()
  await Promise.all([page.waitForURL(/done=session/), page.click('#sessions li form[action$="/end"] button')])
  report.sessionsAfterEnding = await page.locator('#sessions li').count()
  await otherPage.goto(`${base}/account`)
  report.endedSessionLandsOn = new URL(otherPage.url()).pathname
  await other.close()
  step('ended the session of another browser')

  // 7. A second passkey, on a second device (an authenticator holds one passkey per account:
  // the page asks it to exclude those it has), then the first removed; the second signs in.
  const first = await page.locator('#passkeys li').first().getAttribute('data-passkey')
  const { authenticatorId: second } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  })
  await Promise.all([page.waitForURL(/done=passkey/), page.click('#passkey-add')])
  report.passkeysAfterAdding = await page.locator('#passkeys li').count()
  await Promise.all([
    page.waitForURL(/done=removed/),
    page.click(`#passkeys li[data-passkey="${first}"] form[action$="/remove"] button`),
  ])
  report.passkeysAfterRemoving = await page.locator('#passkeys li').count()
  report.firstStillListed = await page.locator(`#passkeys li[data-passkey="${first}"]`).count()
  await look('account-passkeys')
  // The first device is gone; the second signs in.
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId })
  await Promise.all([page.waitForURL(`${base}/login`), page.click('form[action="/logout"] button')])
  await Promise.all([page.waitForURL(`${base}/account`), page.click('#passkey-login')])
  report.credentialsOnSecondDevice = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: second })).credentials.length
  step('added a second passkey, removed the first, and signed in with the second')

  // LNURL-auth: link a wallet (an independent signer), then sign in with it; a k1 is single-use.
  const seed = '000102030405060708090a0b0c0d0e0f'
  await Promise.all([page.waitForURL(`${base}/account/wallets/link`), page.click('#wallet-link')])
  await look('link')
  const linkCode = await page.locator('#lnurl-auth-qr').getAttribute('href')
  const linked = wallet(seed, linkCode)
  report.linkAnswer = linked.answer
  await page.waitForURL(`${base}/account`, { timeout: 15000 })
  report.walletsAfterLinking = await page.locator('#wallets li').count()
  report.replayedLink = wallet(seed, linkCode).answer
  await Promise.all([page.waitForURL(`${base}/login`), page.click('form[action="/logout"] button')])
  const loginCode = await page.locator('#lnurl-auth-qr').getAttribute('href')
  report.forgedK1 = wallet(seed, loginCode, 'ab'.repeat(32)).answer
  report.strangerWallet = wallet('ff'.repeat(16), loginCode).answer
  await page.reload()
  const freshCode = await page.locator('#lnurl-auth-qr').getAttribute('href')
  report.loginAnswer = wallet(seed, freshCode).answer
  await page.waitForURL(`${base}/account`, { timeout: 15000 })
  report.signedInByWallet = (await page.locator('#address').textContent()).trim()
  report.replayedLogin = wallet(seed, freshCode).answer
  step('linked a Lightning wallet and signed in with it')

  // Keyboard: the sign-out button is reachable by Tab from the top of the page.
  await page.keyboard.press('Tab')
  report.firstFocus = await page.evaluate(() => document.activeElement && document.activeElement.textContent.trim())

  report.consoleErrors = consoleErrors
} catch (e) {
  // What was seen up to the failure, for whoever reads the test's output.
  console.error(JSON.stringify(report))
  throw e
} finally {
  await browser.close()
}
console.log(JSON.stringify(report))
