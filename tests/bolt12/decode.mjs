// Decodes a BOLT12 offer with boltz-bolt12 (rust-lightning compiled to WebAssembly by Boltz,
// not rayo's code) and prints what a payer's wallet would show, as JSON.
// Usage: node --experimental-wasm-modules decode.mjs <lno1…>
import { Offer } from "boltz-bolt12";

const hex = (bytes) => (bytes ? Buffer.from(bytes).toString("hex") : null);

try {
  const offer = new Offer(process.argv[2] ?? "");
  console.log(
    JSON.stringify({
      id: hex(offer.id),
      description: offer.description ?? null,
      issuer: offer.issuer ?? null,
      signing_pubkey: hex(offer.signing_pubkey),
      amount: offer.amount === undefined ? null : offer.amount.toString(),
      chains: offer.chains.map((c) => String(c)),
      paths: offer.paths.length,
    }),
  );
} catch (e) {
  console.log(JSON.stringify({ error: String(e) }));
  process.exit(1);
}
