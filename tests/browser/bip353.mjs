// An address's BIP-353 name on its pages, as a phone's browser shows it: the pay page (the
// name folded under the LNURL code, opened by keyboard) and the person's account page.
//   node bip353.mjs <base-url> <session cookie value> <artifact-dir> <user>
// Decodes each offer QR code and reports what it saw as JSON; screenshots at 360 px wide,
// light and dark, go to <artifact-dir>.
import { chromium } from 'playwright-core'
import jsQR from 'jsqr'
import { PNG } from 'pngjs'

const [base, session, artifacts, user] = process.argv.slice(2)
const report = { consoleErrors: [] }

async function decodeQr(locator) {
  const png = PNG.sync.read(await locator.screenshot())
  const code = jsQR(new Uint8ClampedArray(png.data), png.width, png.height)
  if (!code) throw new Error('no QR code found')
  return code.data
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // The test's domain is a DNS name (BIP-353 needs one) that only this browser resolves.
  args: [
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    `--host-resolver-rules=MAP ${new URL(base).hostname} 127.0.0.1`,
  ],
})
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 800 } })
  const page = await context.newPage()
  page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(m.text()) })

  await page.goto(`${base}/@${user}`)
  report.payPageClosed = !(await page.locator('#offer-qr').isVisible())
  // Opened from the keyboard: the summary takes focus and Enter unfolds it.
  await page.focus('#bip353 summary')
  await page.keyboard.press('Enter')
  await page.locator('#offer-qr').waitFor({ state: 'visible' })
  report.payPageName = await page.locator('#bip353-address').textContent()
  await page.locator('#offer-qr img').evaluate((img) => img.decode())
  report.payPageQr = await decodeQr(page.locator('#offer-qr img'))
  report.payPageLink = await page.locator('#offer-qr').getAttribute('href')
  report.payPageWidth = await page.evaluate(() => document.documentElement.scrollWidth)
  report.payPageBytes = (await page.content()).length
  await page.screenshot({ path: `${artifacts}/bip353-pay-page.png`, fullPage: true })
  await page.emulateMedia({ colorScheme: 'dark' })
  await page.screenshot({ path: `${artifacts}/bip353-pay-page-dark.png`, fullPage: true })
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize({ width: 1280, height: 900 })
  await page.screenshot({ path: `${artifacts}/bip353-pay-page-desktop.png`, fullPage: true })
  await page.setViewportSize({ width: 360, height: 800 })

  await context.addCookies([{ name: 'rayo_session', value: session, url: base }])
  await page.goto(`${base}/account`)
  report.accountName = await page.locator('#bip353-address').textContent()
  await page.locator('#offer-qr img').scrollIntoViewIfNeeded()
  await page.locator('#offer-qr img').evaluate((img) => img.decode())
  report.accountQr = await decodeQr(page.locator('#offer-qr img'))
  report.accountWidth = await page.evaluate(() => document.documentElement.scrollWidth)
  await page.locator('#h-bip353').scrollIntoViewIfNeeded()
  await page.screenshot({ path: `${artifacts}/bip353-account.png` })
  await page.emulateMedia({ colorScheme: 'dark' })
  await page.screenshot({ path: `${artifacts}/bip353-account-dark.png` })
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize({ width: 1280, height: 900 })
  await page.locator('#h-bip353').scrollIntoViewIfNeeded()
  await page.screenshot({ path: `${artifacts}/bip353-account-desktop.png` })
} finally {
  await browser.close()
}
console.log(JSON.stringify(report))
