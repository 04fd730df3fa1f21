// A Lightning wallet's side of LNURL-auth (LUD-04, keys as LUD-05 derives them), written with
// @noble/curves and @scure/bip32, independently of rayo's Rust code.
//   node lnurl-auth.mjs <seed hex> <login URL with k1> [<k1 to sign instead>]
// Prints JSON: the linking key, and the service's answer.
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { HDKey } from '@scure/bip32'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { bech32 } from '@scure/base'

const [seedHex, scanned, forgedK1] = process.argv.slice(2)
// What a wallet scans: `lightning:LNURL1…` (LUD-01), or a plain URL.
const lnurl = scanned.replace(/^lightning:/i, '')
const url = new URL(
  /^lnurl1/i.test(lnurl)
    ? new TextDecoder().decode(bech32.fromWords(bech32.decode(lnurl.toLowerCase(), 2000).words))
    : lnurl,
)
if (url.searchParams.get('tag') !== 'login') throw new Error(`not an LNURL-auth URL: ${url}`)
const root = HDKey.fromMasterSeed(hexToBytes(seedHex))
// LUD-05: the hashing key at m/138'/0; HMAC-SHA256 of the domain gives the path's four numbers.
const hashingKey = root.derive("m/138'/0").privateKey
const digest = hmac(sha256, hashingKey, new TextEncoder().encode(url.host))
const view = new DataView(digest.buffer, digest.byteOffset, 16)
// Each is a raw 32-bit child index (those of 2^31 and above are hardened children).
const linking = [0, 4, 8, 12]
  .map((i) => view.getUint32(i, false))
  .reduce((key, index) => key.deriveChild(index), root.derive("m/138'"))

const k1 = hexToBytes(forgedK1 || url.searchParams.get('k1'))
// LUD-04: k1 is the message digest itself; the signature is DER.
const sig = secp256k1.sign(k1, linking.privateKey, { prehash: false, format: 'der' })
url.searchParams.set('sig', bytesToHex(sig))
url.searchParams.set('key', bytesToHex(linking.publicKey))
const answer = await fetch(url).then((r) => r.json())
console.log(JSON.stringify({ key: bytesToHex(linking.publicKey), answer }))
