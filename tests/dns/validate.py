"""Validates what rayo's DNS server answers with dnspython's DNSSEC code (not rayo's).

Usage: validate.py <server> <port> <zone> <name> <base64 key of the zone's trust anchor> [--tamper]

Fetches the zone's DNSKEY set over TCP and checks it is signed by the anchor key, then asks
for the name's TXT record over UDP and validates its RRSIG with that key set. With --tamper,
one byte of the record is changed first, and validation must fail. Prints one JSON object.
"""

import base64
import json
import sys

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def ask(server, port, name, rdtype, tcp=False):
    query = dns.message.make_query(name, rdtype, want_dnssec=True, payload=1232)
    query.flags &= ~dns.flags.RD
    if tcp:
        return dns.query.tcp(query, server, port=port, timeout=5)
    return dns.query.udp(query, server, port=port, timeout=5)


def split(answer, name, rdtype):
    rrset = answer.find_rrset(answer.answer, name, dns.rdataclass.IN, rdtype)
    sigs = answer.find_rrset(
        answer.answer, name, dns.rdataclass.IN, dns.rdatatype.RRSIG, rdtype
    )
    return rrset, sigs


def main():
    server, port, zone, name, anchor = sys.argv[1:6]
    tamper = "--tamper" in sys.argv[6:]
    port = int(port)
    zone = dns.name.from_text(zone)
    name = dns.name.from_text(name)
    out = {"name": name.to_text()}
    try:
        keys_answer = ask(server, port, zone, dns.rdatatype.DNSKEY, tcp=True)
        keys, key_sigs = split(keys_answer, zone, dns.rdatatype.DNSKEY)
        anchored = [k for k in keys if base64.b64encode(k.key).decode() == anchor]
        if not anchored:
            raise dns.dnssec.ValidationFailure("the anchor key is not in the zone's DNSKEY set")
        anchor_set = dns.rrset.from_rdata_list(zone, keys.ttl, anchored)
        dns.dnssec.validate(keys, key_sigs, {zone: anchor_set})
        # The DS record the parent would hold for that key, as dnspython computes it.
        out["ds"] = dns.dnssec.make_ds(zone, anchored[0], "SHA256").to_text()
        answer = ask(server, port, name, dns.rdatatype.TXT)
        out["aa"] = bool(answer.flags & dns.flags.AA)
        txt, sigs = split(answer, name, dns.rdatatype.TXT)
        if tamper:
            record = txt[0]
            first = bytearray(record.strings[0])
            first[-1] = ord("q") if first[-1] != ord("q") else ord("p")
            changed = dns.rdata.from_text(
                dns.rdataclass.IN,
                dns.rdatatype.TXT,
                " ".join('"%s"' % s.decode() for s in [bytes(first)] + list(record.strings[1:])),
            )
            txt = dns.rrset.from_rdata_list(name, txt.ttl, [changed])
        out["txt"] = "".join(s.decode() for s in txt[0].strings)
        dns.dnssec.validate(txt, sigs, {zone: keys})
        out["validated"] = True
    except dns.dnssec.ValidationFailure as e:
        out["validated"] = False
        out["error"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
