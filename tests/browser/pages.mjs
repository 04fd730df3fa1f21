// Drives rayo's pages in headless Chromium like a payer would, and reports what it saw as JSON.
//   node pages.mjs <base-url> <admin-token> <artifact-dir> [<user priced in a currency>]
// Steps: open the pay page and decode its QR; ask for an invoice with the form; see the
// checkout page, decode its QR, settle through the admin API and watch the page switch to
// paid; then an app's checkout page with a return link. Screenshots go to <artifact-dir>.
import { chromium } from 'playwright-core'
import jsQR from 'jsqr'
import { PNG } from 'pngjs'

const [base, token, artifacts, priced] = process.argv.slice(2)
const report = {}

async function decodeQr(locator) {
  const png = PNG.sync.read(await locator.screenshot())
  const code = jsQR(new Uint8ClampedArray(png.data), png.width, png.height)
  if (!code) throw new Error('no QR code found')
  return code.data
}

async function settle(hash) {
  const answer = await fetch(`${base}/admin/v1/dev/settle/${hash}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  })
  if (!answer.ok) throw new Error(`settle: ${answer.status}`)
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
})
try {
  const page = await browser.newPage({ viewport: { width: 420, height: 900 } })
  const consoleErrors = []
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()) })

  await page.goto(`${base}/@satoshi`)
  report.payPageTitle = await page.title()
  report.payPageAddress = await page.locator('#address').textContent()
  report.payPageQr = await decodeQr(page.locator('#lnurl-qr svg'))
  report.payPageLink = await page.locator('#lnurl-qr').getAttribute('href')
  await page.screenshot({ path: `${artifacts}/pay-page.png`, fullPage: true })

  await page.fill('input[name=amount]', '21')
  await page.fill('input[name=comment]', 'from the browser')
  await Promise.all([page.waitForURL(/\/pay\/[0-9a-f]{64}$/), page.click('button[type=submit]')])
  const hash = page.url().split('/').pop()
  report.checkoutHash = hash
  report.checkoutQr = await decodeQr(page.locator('#invoice-qr svg'))
  report.checkoutAmount = await page.locator('h1').textContent()
  report.countdown = await page.locator('#countdown').textContent()
  report.paidVisibleBefore = await page.locator('#paid').isVisible()
  await settle(hash)
  await page.locator('#paid').waitFor({ state: 'visible', timeout: 10000 })
  report.paidVisibleAfter = await page.locator('#paid').isVisible()
  await page.screenshot({ path: `${artifacts}/paid.png`, fullPage: true })

  // An app's checkout page, with a link back once paid.
  const created = await fetch(`${base}/api/v1/invoices`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'satoshi', amount_sat: 5, description: 'Order <b>#7</b>', return_url: 'https://shop.example/thanks?order=7' }),
  }).then((r) => r.json())
  await page.goto(created.checkout_url)
  report.appDescription = await page.locator('.description').textContent()
  report.appQr = await decodeQr(page.locator('#invoice-qr svg'))
  report.appBolt11 = created.bolt11
  report.returnLinkBefore = await page.locator('#return').isVisible()
  await settle(created.payment_hash)
  await page.locator('#return').waitFor({ state: 'visible', timeout: 10000 })
  report.returnLink = await page.locator('#return').getAttribute('href')
  await page.screenshot({ path: `${artifacts}/checkout-paid.png`, fullPage: true })

  // Without JavaScript the pay page still works: the form makes an invoice page.
  const plain = await browser.newPage({ javaScriptEnabled: false })
  await plain.goto(`${base}/@satoshi`)
  await plain.fill('input[name=amount]', '3')
  await Promise.all([plain.waitForURL(/\/pay\/[0-9a-f]{64}$/), plain.click('button[type=submit]')])
  report.noScriptQr = await decodeQr(plain.locator('#invoice-qr svg'))
  // A user priced in a currency: the form asks in it, says what it is worth in sats, and
  // its invoice is the amount converted.
  if (priced) {
    const shop = await browser.newPage({ viewport: { width: 420, height: 900 } })
    await shop.goto(`${base}/@${priced}`)
    report.currencyLabel = (await shop.locator('form.amount label').first().textContent()).trim()
    report.satEquivalent = (await shop.locator('#sat-equivalent').textContent()).trim()
    await shop.screenshot({ path: `${artifacts}/pay-page-in-a-currency.png`, fullPage: true })
    await shop.fill('input[name=fiat]', '2500')
    await Promise.all([shop.waitForURL(/\/pay\/[0-9a-f]{64}$/), shop.click('button[type=submit]')])
    report.currencyCheckoutHash = shop.url().split('/').pop()
  }
  report.consoleErrors = consoleErrors
} finally {
  await browser.close()
}
console.log(JSON.stringify(report))
