// The recipient of a NIP-17 private message, written with nostr-tools so the unwrapping is
// independent of rayo's Rust code.
//
//   node dm-recipient.mjs list <relay> <secret hex> <dm relay>...
//     publishes the recipient's kind 10050 list of DM relays to <relay>, prints "listed"
//   node dm-recipient.mjs receive <relay> <secret hex> <timeout ms>
//     waits for a kind 1059 gift wrap p-tagged to the recipient, unwraps it (NIP-59: the
//     wrap's NIP-44 layer, the seal's signature and NIP-44 layer, the rumour), and prints one
//     JSON line: {wrap, seal, rumor}. Exits 1 if nothing comes in time or a check fails.
import WebSocket from 'ws'
import { finalizeEvent, verifyEvent, getPublicKey } from 'nostr-tools/pure'
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay'
import * as nip44 from 'nostr-tools/nip44'
import * as nip59 from 'nostr-tools/nip59'

useWebSocketImplementation(WebSocket)

const [mode, relayUrl, secretHex, ...rest] = process.argv.slice(2)
const secret = Uint8Array.from(Buffer.from(secretHex, 'hex'))
const me = getPublicKey(secret)
const relay = await Relay.connect(relayUrl)

if (mode === 'list') {
  const list = finalizeEvent(
    { kind: 10050, created_at: Math.floor(Date.now() / 1000), tags: rest.map((r) => ['relay', r]), content: '' },
    secret,
  )
  await relay.publish(list)
  console.log('listed')
  relay.close()
  process.exit(0)
}

const timeout = Number(rest[0] || 10000)
const timer = setTimeout(() => {
  console.error('no gift wrap arrived')
  process.exit(1)
}, timeout)
relay.subscribe([{ kinds: [1059], '#p': [me] }], {
  onevent(wrap) {
    try {
      if (!verifyEvent(wrap)) throw new Error('the wrap is not signed')
      const pTags = wrap.tags.filter((t) => t[0] === 'p')
      if (pTags.length !== 1 || pTags[0][1] !== me) throw new Error('the wrap does not name the recipient alone')
      // The seal, by hand: kind 13, signed by the sender, no tags.
      const seal = JSON.parse(nip44.v2.decrypt(wrap.content, nip44.v2.utils.getConversationKey(secret, wrap.pubkey)))
      if (seal.kind !== 13) throw new Error(`seal kind ${seal.kind}`)
      if (!verifyEvent(seal)) throw new Error('the seal signature is invalid')
      if (seal.tags.length !== 0) throw new Error('the seal has tags')
      if (seal.pubkey === wrap.pubkey) throw new Error('the wrap is signed by the sender, not a fresh key')
      // And the library's own unwrapping.
      const rumor = nip59.unwrapEvent(wrap, secret)
      if (rumor.kind !== 14) throw new Error(`rumor kind ${rumor.kind}`)
      if (rumor.pubkey !== seal.pubkey) throw new Error('the rumor is not the sealer\'s')
      if ('sig' in rumor && rumor.sig) throw new Error('the rumor is signed')
      console.log(JSON.stringify({ wrap, seal, rumor }))
      clearTimeout(timer)
      relay.close()
      process.exit(0)
    } catch (e) {
      console.error(String(e))
      process.exit(1)
    }
  },
})
