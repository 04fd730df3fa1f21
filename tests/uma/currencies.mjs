// An independent reading of the `currencies` rayo advertises (lnurl/luds#251 as UMA's
// UMAD-04 v0 currency objects): parsed with @uma-sdk/core's Currency.parse, which validates
// each object's shape.
//   node currencies.mjs '<currencies JSON array>'
// prints, per currency, what the SDK read: code, multiplier, decimals, minSendable and
// maxSendable; exits 1 with the SDK's complaint if any does not parse.
import { Currency } from '@uma-sdk/core'

const listed = JSON.parse(process.argv[2])
const read = []
for (const raw of listed) {
  try {
    const c = Currency.parse(raw)
    read.push({ code: c.code, multiplier: c.multiplier, decimals: c.decimals, minSendable: c.minSendable, maxSendable: c.maxSendable })
  } catch (e) {
    console.error(`${JSON.stringify(raw)}: ${e}`)
    process.exit(1)
  }
}
console.log(JSON.stringify(read))
