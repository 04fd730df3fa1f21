// An independent check of rayo's zaps with nostr-tools (npm), the reference many Nostr
// clients build on:
//   node zap.mjs request <relay-url> <amount-msat> <recipient-pubkey-hex>
//     prints a signed zap request made by nip57.makeZapRequest
//   node zap.mjs receipt <receipt-json> <request-json> <nostr-pubkey-hex> <bolt11>
//     exits 0 if the receipt verifies and matches the request, else prints why and exits 1
import { finalizeEvent, verifyEvent } from 'nostr-tools/pure'
import * as nip57 from 'nostr-tools/nip57'

// A fixed sender key, so runs are reproducible.
const SENDER = Uint8Array.from(Buffer.from('00000000000000000000000000000000000000000000000000000000000000b7', 'hex'))

function fail(why) {
  console.error(why)
  process.exit(1)
}

const [command, ...args] = process.argv.slice(2)
if (command === 'request') {
  const [relay, amount, pubkey] = args
  const template = nip57.makeZapRequest({ pubkey, amount: Number(amount), comment: 'via nostr-tools', relays: [relay] })
  const request = JSON.stringify(finalizeEvent(template, SENDER))
  const problem = nip57.validateZapRequest(request)
  if (problem) fail(`nostr-tools refuses its own request: ${problem}`)
  console.log(request)
} else if (command === 'receipt') {
  const [receiptJson, requestJson, serverKey, bolt11] = args
  const receipt = JSON.parse(receiptJson)
  const request = JSON.parse(requestJson)
  const tag = (event, name) => (event.tags.find((t) => t[0] === name) || [])[1]
  if (!verifyEvent(receipt)) fail('receipt id or signature does not verify')
  if (receipt.kind !== 9735) fail(`receipt kind ${receipt.kind}`)
  if (receipt.pubkey !== serverKey) fail('receipt not signed by nostrPubkey')
  if (tag(receipt, 'description') !== requestJson) fail('description is not the request as sent')
  const problem = nip57.validateZapRequest(tag(receipt, 'description'))
  if (problem) fail(`description is not a valid zap request: ${problem}`)
  if (tag(receipt, 'bolt11') !== bolt11) fail('bolt11 tag differs')
  if (tag(receipt, 'p') !== tag(request, 'p')) fail('p tag not copied')
  // nostr-tools reads amounts from mainnet (lnbc<amount>) invoices only, not regtest (lnbcrt).
  if (/^lnbc\d/.test(bolt11) && nip57.getSatoshisAmountFromBolt11(bolt11) * 1000 !== Number(tag(request, 'amount'))) {
    fail('amount differs')
  }
  console.log('ok')
} else {
  fail('usage: zap.mjs request|receipt ...')
}
