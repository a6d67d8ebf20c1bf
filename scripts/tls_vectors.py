#!/usr/bin/env python3
"""Independent TLS key-derivation vectors for src/tls/schedule.rs tests.

Written separately from the Rust code, on Python's hmac/hashlib only. Run once; the
printed values are pasted into the tests. The TLS 1.2 PRF SHA-384 value was also checked
with `openssl kdf -keylen 80 -kdfopt digest:SHA2-384 ... TLS1-PRF` (same output).
"""
import hashlib
import hmac


def p_hash(h, secret, seed, n):
    out, a = b"", seed
    while len(out) < n:
        a = hmac.new(secret, a, h).digest()
        out += hmac.new(secret, a + seed, h).digest()
    return out[:n]


def expand_label(h, secret, label, context, n):
    full = b"tls13 " + label
    info = n.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    # RFC 5869: T(i) = HMAC(PRK, T(i-1) | info | i)
    out, t = b"", b""
    for i in range(1, 256):
        if len(out) >= n:
            break
        t = hmac.new(secret, t + info + bytes([i]), h).digest()
        out += t
    return out[:n]


sec = bytes.fromhex("9bbe436ba940f017b17652849a71db35")
seed = bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c")
print("prf256", p_hash(hashlib.sha256, sec, b"test label" + seed, 100).hex())
print("prf384", p_hash(hashlib.sha384, bytes(range(48)), b"test label" + bytes(range(100, 164)), 80).hex())
pm = bytes([3, 3]) + bytes(range(46))
cr, sr = bytes(range(32)), bytes(range(32, 64))
ms = p_hash(hashlib.sha256, pm, b"master secret" + cr + sr, 48)
print("master", ms.hex())
sh = hashlib.sha256(b"handshake").digest()
print("ems384", p_hash(hashlib.sha384, pm, b"extended master secret" + sh, 48).hex())
print("keyblock", p_hash(hashlib.sha256, ms, b"key expansion" + sr + cr, 2 * (20 + 16)).hex())
# RFC 8448 server_application_traffic_secret_0 -> _1 (KeyUpdate)
s_ap = bytes.fromhex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
print("traffic_upd", expand_label(hashlib.sha256, s_ap, b"traffic upd", b"", 32).hex())
s384 = bytes(range(48))
print("key384", expand_label(hashlib.sha384, s384, b"key", b"", 32).hex())
print("iv384", expand_label(hashlib.sha384, s384, b"iv", b"", 12).hex())
