// A person sets up payment alerts on their account page in headless Chromium, and reports
// what it saw as JSON.
//   node notifications.mjs <base-url on localhost> <admin-token> <artifact-dir> <ntfy base> <telegram base>
// The journey: join by invite with a passkey; add an ntfy topic; try a bad npub and read the
// error; add an email address, follow the mailed link (read by the test's SMTP server into
// <artifact-dir>/../smtp-<n>.json is not needed: the link is asked of the caller through
// stdin) and confirm it; send a test through ntfy; choose a 10-minute digest without
// details; link a Telegram chat by its code. Each state is screenshot at phone and desktop
// width, light and dark, and checked with axe-core.
import { chromium } from 'playwright-core'
import { createRequire } from 'node:module'
import { readFileSync, existsSync, readdirSync } from 'node:fs'

const require = createRequire(import.meta.url)
const axePath = require.resolve('axe-core/axe.min.js')
const [base, token, artifacts, ntfyBase, telegramBase, mailDir] = process.argv.slice(2)
const report = { steps: [], axe: {}, bytes: {} }
const admin = (path, init = {}) =>
  fetch(`${base}/admin/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) },
  }).then(async (r) => { if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`); return r.json() })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
})
const step = (text) => report.steps.push(text)
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 780 } })
  const page = await context.newPage()
  const consoleErrors = []
  // The refused form answers 422 on purpose; Chromium logs that status as an error.
  const expected = (text) => /status of 422/.test(text) && page.url().endsWith('/account/notify/add')
  page.on('console', (m) => { if (m.type() === 'error' && !expected(m.text())) consoleErrors.push(`${page.url()}: ${m.text()}`) })
  page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`))
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  })
  const auditor = await browser.newContext({ bypassCSP: true })
  // `again`: false for a page that answered a POST: the auditor cannot GET it again, so it
  // checks the same markup, loaded on this origin.
  async function look(name, section, again = true) {
    const shoot = async (suffix) => {
      await page.screenshot({ path: `${artifacts}/notify-${name}-${suffix}.png`, fullPage: !section })
      if (section) await page.locator(section).screenshot({ path: `${artifacts}/notify-${name}-${suffix}.png` })
    }
    if (section) await page.locator(section).scrollIntoViewIfNeeded()
    await shoot('phone')
    await page.setViewportSize({ width: 1280, height: 900 })
    await shoot('desktop')
    await page.emulateMedia({ colorScheme: 'dark' })
    await shoot('phone-dark')
    await page.emulateMedia({ colorScheme: 'light' })
    await page.setViewportSize({ width: 360, height: 780 })
    report.bytes[name] = Buffer.byteLength(await page.content())
    report[`${name}Overflows`] = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth)
    const markup = await page.content()
    await auditor.clearCookies()
    await auditor.addCookies(await context.cookies())
    const audit = await auditor.newPage()
    const violations = []
    for (const scheme of ['light', 'dark']) {
      await audit.emulateMedia({ colorScheme: scheme })
      if (again) {
        await audit.goto(page.url())
      } else {
        await audit.goto(`${base}/`)
        await audit.setContent(markup)
      }
      await audit.addScriptTag({ path: axePath })
      const result = await audit.evaluate(() => window.axe.run(document))
      for (const v of result.violations) violations.push(`${scheme}: ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
    }
    await audit.close()
    report.axe[name] = violations
  }
  const channels = async () => page.locator('#channels li').evaluateAll((items) =>
    items.map((li) => ({ key: li.dataset.channel, state: li.className, text: li.textContent.replace(/\s+/g, ' ').trim() })))

  // 1. Join by invite, with a passkey.
  const invite = await admin('/invites', { method: 'POST', body: JSON.stringify({}) })
  await page.goto(invite.url.replace(/^http:\/\/[^/]+/, base))
  await page.fill('#join-name', 'alice')
  await Promise.all([page.waitForURL(`${base}/account`), page.click('#join-passkey')])
  report.noChannels = await page.locator('#no-channels').isVisible()
  await look('empty', '#notifications')
  step('joined, with no notification channels')

  // 2. An ntfy topic.
  await page.selectOption('#notify-kind', 'ntfy')
  await page.fill('#notify-value', `${ntfyBase}/alice-x7`)
  await Promise.all([page.waitForURL(/done=channel/), page.click('form[action="/account/notify/add"] button[type=submit]')])
  report.afterNtfy = await channels()
  step('added an ntfy topic')

  // 3. A bad npub: the reason, and nothing added.
  await page.selectOption('#notify-kind', 'nostr')
  await page.fill('#notify-value', 'npub1nope')
  await page.click('form[action="/account/notify/add"] button[type=submit]')
  await page.locator('#page-error').waitFor()
  report.badNpubError = (await page.locator('#page-error').textContent()).trim()
  report.afterBadNpub = (await channels()).length
  await look('refused', '#page-error', false)
  step('was told why a bad npub was refused')

  // 4. An email address: waiting until the mailed link is opened.
  await page.goto(`${base}/account`)
  await page.selectOption('#notify-kind', 'email')
  await page.fill('#notify-value', 'alice@example.org')
  await Promise.all([page.waitForURL(/done=channel-email/), page.click('form[action="/account/notify/add"] button[type=submit]')])
  report.emailNotice = (await page.locator('.notice, [role=status]').first().textContent().catch(() => '')).trim()
  report.afterEmail = await channels()
  await look('unconfirmed', '#notifications')
  // The mail, as the SMTP server received it.
  let link
  for (let i = 0; i < 100 && !link; i++) {
    const mails = existsSync(mailDir) ? readdirSync(mailDir).filter((f) => f.endsWith('.json')) : []
    for (const file of mails) {
      const data = JSON.parse(readFileSync(`${mailDir}/${file}`)).data.replace(/=\r\n/g, '').replace(/=3D/g, '=')
      const found = data.split(/\s+/).find((w) => w.includes('/notify/confirm?'))
      if (found) link = found
    }
    if (!link) await sleep(100)
  }
  if (!link) throw new Error('no confirmation mail arrived')
  await page.goto(link.replace(/^http:\/\/[^/]+/, base))
  await look('confirm')
  await Promise.all([page.waitForLoadState(), page.click('#confirm-link')])
  report.confirmed = (await page.locator('h1').textContent()).trim()
  await page.goto(`${base}/account#notifications`)
  report.afterConfirm = await channels()
  step('confirmed the address from the mailed link')

  // 5. A test through the ntfy topic.
  const ntfyKey = report.afterNtfy[0].key
  await Promise.all([
    page.waitForURL(/done=notify-test/),
    page.click(`#channels li[data-channel="${ntfyKey}"] form[action="/account/notify/test"] button`),
  ])
  step('sent a test through the ntfy topic')

  // 6. A digest every 10 minutes, amounts only.
  await page.selectOption('#notify-digest', '10m')
  await page.uncheck('#notify-details')
  await Promise.all([page.waitForURL(/done=notify-settings/), page.click('form[action="/account/notify/settings"] button[type=submit]')])
  report.digestChosen = await page.inputValue('#notify-digest')
  report.detailsTicked = await page.isChecked('#notify-details')
  step('chose a digest every 10 minutes, without comments and names')

  // 7. A Telegram chat, linked by its code.
  await Promise.all([page.waitForURL(`${base}/account/notify/telegram`), page.click('#link-telegram')])
  report.telegramLink = await page.locator('#telegram-link').getAttribute('href')
  const code = (await page.locator('#telegram-code').textContent()).trim()
  await look('telegram', null, false)
  await fetch(`${telegramBase}/control/say`, { method: 'POST', body: JSON.stringify({ chat: 4242, text: code }) })
  // The bot reads its messages by long polling: give it time on a loaded machine.
  // (A reload each time: going to the same URL with a #fragment would not load it again.)
  await page.goto(`${base}/account`)
  for (const until = Date.now() + 30000; Date.now() < until;) {
    if ((await channels()).some((c) => c.key === 'telegram:4242')) break
    await sleep(250)
    await page.reload()
  }
  report.afterTelegram = await channels()
  await look('channels', '#notifications')
  await look('account')
  step('linked a Telegram chat')

  // Keyboard: every control of the section can be reached with Tab.
  const reachable = await page.evaluate(() => {
    const section = document.getElementById('notifications')
    return [...section.querySelectorAll('button, select, input:not([type=hidden])')].every((el) => el.tabIndex >= 0 && !el.disabled)
  })
  report.keyboardReachable = reachable
  report.consoleErrors = consoleErrors
} catch (e) {
  console.error(JSON.stringify(report))
  throw e
} finally {
  await browser.close()
}
console.log(JSON.stringify(report))
