// A fake NWC wallet service (NIP-47) written with nostr-tools, so its signatures and its
// NIP-04/NIP-44 encryption are independent of rayo's Rust code. It serves requests on a relay
// and fronts a node that mints real signed invoices (the test's fake node, over HTTP).
//
//   node nwc-wallet.mjs   (settings in the environment)
//     RELAY          ws:// URL of the relay
//     WALLET_SECRET  the wallet service's secret key, hex
//     NODE_URL       the node: POST mint {amount_msat, description_hash?, description?, expiry}
//                    -> {invoice, payment_hash}; GET lookup/<hash> -> {settled_at, preimage,
//                    amount, expires_at, created_at} or 404
//     ENCRYPTION     "nip44" (offers nip44_v2 and nip04) or "nip04" (NIP-04 only)
//     METHODS        space-separated methods for the info event and get_info
//     INFO           "none": publish no info event
//
// It prints "ready <control port>" once it listens on the relay. The control port takes
//   POST /mode <mode>     normal | silent | wrong-signer | garbage | not-addressed |
//                         wrong-request | error:<CODE>
//   POST /notify <hash>   sends payment_received for that invoice to every client seen
//   POST /requests        answers how many requests it has read
import http from 'node:http'
import WebSocket from 'ws'
import { finalizeEvent, verifyEvent, getPublicKey, generateSecretKey } from 'nostr-tools/pure'
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay'
import * as nip04 from 'nostr-tools/nip04'
import * as nip44 from 'nostr-tools/nip44'

useWebSocketImplementation(WebSocket)

const env = process.env
const secret = Uint8Array.from(Buffer.from(env.WALLET_SECRET, 'hex'))
const walletPubkey = getPublicKey(secret)
const nip44Offered = env.ENCRYPTION !== 'nip04'
const methods = (env.METHODS || 'make_invoice lookup_invoice get_info').split(' ')
let mode = 'normal'
const clients = new Set()

const tag = (event, name) => (event.tags.find((t) => t[0] === name) || [])[1]
const conversation = (pubkey) => nip44.v2.utils.getConversationKey(secret, pubkey)
const encrypt = (scheme, pubkey, text) =>
  scheme === 'nip44' ? nip44.v2.encrypt(text, conversation(pubkey)) : nip04.encrypt(secret, pubkey, text)
const decrypt = (scheme, pubkey, text) =>
  scheme === 'nip44' ? nip44.v2.decrypt(text, conversation(pubkey)) : nip04.decrypt(secret, pubkey, text)

async function node(method, path, body) {
  const answer = await fetch(new URL(path, env.NODE_URL), {
    method,
    headers: { 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  })
  return { status: answer.status, body: answer.status === 200 ? await answer.json() : null }
}

async function handle(method, params) {
  if (mode.startsWith('error:')) return { error: { code: mode.slice(6), message: 'as the test asked' } }
  if (!methods.includes(method)) return { error: { code: 'NOT_IMPLEMENTED', message: `${method} is not allowed` } }
  if (method === 'get_info') {
    return { result: { alias: 'fake wallet', network: 'regtest', pubkey: walletPubkey, methods, notifications: ['payment_received'] } }
  }
  if (method === 'make_invoice') {
    const minted = await node('POST', 'mint', {
      amount_msat: params.amount,
      description_hash: params.description_hash,
      description: params.description,
      expiry: params.expiry,
    })
    const now = Math.floor(Date.now() / 1000)
    return {
      result: {
        type: 'incoming', invoice: minted.body.invoice, payment_hash: minted.body.payment_hash,
        amount: params.amount, created_at: now, expires_at: now + (params.expiry || 3600),
      },
    }
  }
  if (method === 'lookup_invoice') {
    const found = await node('GET', `lookup/${params.payment_hash}`)
    if (found.status === 404) return { error: { code: 'NOT_FOUND', message: 'no such invoice' } }
    return { result: { type: 'incoming', payment_hash: params.payment_hash, ...found.body } }
  }
  return { error: { code: 'NOT_IMPLEMENTED', message: method } }
}

const relay = await Relay.connect(env.RELAY, { enableReconnect: true })

async function publishInfo() {
  if (env.INFO === 'none') return
  const tags = [['notifications', 'payment_received']]
  if (nip44Offered) tags.push(['encryption', 'nip44_v2 nip04'])
  await relay.publish(finalizeEvent({ kind: 13194, created_at: Math.floor(Date.now() / 1000), tags, content: methods.join(' ') }, secret))
}

// Requests read (decrypted), whatever the mode: a test waits on this instead of on time.
let requestsSeen = 0

async function answer(request) {
  if (!verifyEvent(request)) return
  const client = request.pubkey
  const scheme = tag(request, 'encryption') === 'nip44_v2' ? 'nip44' : 'nip04'
  if (scheme === 'nip44' && !nip44Offered) return
  let parsed
  try {
    parsed = JSON.parse(decrypt(scheme, client, request.content))
  } catch (e) {
    return
  }
  clients.add(client)
  requestsSeen += 1
  if (mode === 'silent') return
  const outcome = await handle(parsed.method, parsed.params || {})
  const content = JSON.stringify({ result_type: parsed.method, error: outcome.error || null, result: outcome.result || null })
  let signer = secret
  let encrypted = encrypt(scheme, client, content)
  let to = client
  let about = request.id
  if (mode === 'wrong-signer') signer = generateSecretKey()
  if (mode === 'garbage') encrypted = Buffer.from('not an encrypted answer').toString('base64')
  if (mode === 'not-addressed') to = getPublicKey(generateSecretKey())
  if (mode === 'wrong-request') about = '0'.repeat(64)
  const response = finalizeEvent(
    { kind: 23195, created_at: Math.floor(Date.now() / 1000), tags: [['e', about], ['p', to]], content: encrypted },
    signer,
  )
  await relay.publish(response)
}

async function notify(paymentHash) {
  const found = await node('GET', `lookup/${paymentHash}`)
  const content = JSON.stringify({
    notification_type: 'payment_received',
    notification: { type: 'incoming', payment_hash: paymentHash, ...(found.body || {}) },
  })
  for (const client of clients) {
    const kind = nip44Offered ? 23197 : 23196
    const scheme = nip44Offered ? 'nip44' : 'nip04'
    await relay.publish(
      finalizeEvent({ kind, created_at: Math.floor(Date.now() / 1000), tags: [['p', client]], content: encrypt(scheme, client, content) }, secret),
    )
  }
}

await publishInfo()
relay.subscribe([{ kinds: [23194], '#p': [walletPubkey], since: Math.floor(Date.now() / 1000) - 5 }], {
  onevent: (event) => { answer(event).catch((e) => console.error(e)) },
})

const control = http.createServer((req, res) => {
  let body = ''
  req.on('data', (chunk) => { body += chunk })
  req.on('end', async () => {
    try {
      if (req.url === '/mode') mode = body.trim()
      else if (req.url === '/notify') await notify(body.trim())
      else if (req.url === '/requests') return res.end(String(requestsSeen))
      res.end('ok')
    } catch (e) {
      res.statusCode = 500
      res.end(String(e))
    }
  })
})
control.listen(0, '127.0.0.1', () => console.log(`ready ${control.address().port}`))
