#!/usr/bin/python3
"""Golden ESP packets for src/ipsec/esp_test.ts, built here by hand from the RFCs with
python3-cryptography and the standard library only (no Kagemusha code, no scapy):

  RFC 4303 sec. 2   SPI | Sequence | IV | payload | padding 1,2,3.. | pad len | next header | ICV
  RFC 4106          AES-GCM: nonce = salt | IV, AAD = SPI | Sequence, 16-octet tag
  RFC 3602 / 4868   AES-CBC, then HMAC-SHA-256 over SPI..next header, leftmost 16 octets
  RFC 2410          NULL: the plaintext as is

Run: /usr/bin/python3 test/ipsec/gen_esp_golden.py   (prints JSON)
"""

import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# The seed BU (HoA 2001:db8:2000::10 -> HA 2001:db8:2000::1, seq 13) and BA of
# src/wire/mobility_test.ts, checksums included.
BU = bytes.fromhex("3b03050001e9000dc000000f0100031020010db8300000000000000000000003")
BA = bytes.fromhex("3b01060021c60000000d000f01020000")


def trailer(payload, align, nh=135):
    pad = (-(len(payload) + 2)) % align
    return payload + bytes(range(1, pad + 1)) + bytes([pad, nh])


def gcm(name, spi, seq, key, salt, payload):
    iv = struct.pack("!Q", seq)  # explicit IV = the sequence number, zero-extended
    head = struct.pack("!LL", spi, seq)
    sealed = AESGCM(key).encrypt(salt + iv, trailer(payload, 4), head)
    return {"name": name, "spi": spi, "seq": seq, "key": (key + salt).hex(),
            "hex": (head + iv + sealed).hex()}


def cbc_hmac(name, spi, seq, key, auth, iv, payload):
    head = struct.pack("!LL", spi, seq)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = head + iv + enc.update(trailer(payload, 16)) + enc.finalize()
    icv = hmac.new(auth, body, hashlib.sha256).digest()[:16]
    return {"name": name, "spi": spi, "seq": seq, "key": key.hex(), "authKey": auth.hex(),
            "hex": (body + icv).hex()}


def null_hmac(name, spi, seq, auth, payload):
    body = struct.pack("!LL", spi, seq) + trailer(payload, 4)
    icv = hmac.new(auth, body, hashlib.sha256).digest()[:16]
    return {"name": name, "spi": spi, "seq": seq, "key": "", "authKey": auth.hex(),
            "hex": (body + icv).hex()}


out = [
    gcm("aes-gcm-128", 0x4B4D0001, 1, bytes(range(16)), bytes.fromhex("cafebabe"), BU),
    gcm("aes-gcm-256", 0x4B4D0002, 0x01020304, bytes(range(0x80, 0xA0)),
        bytes.fromhex("deadbeef"), BA),
    cbc_hmac("aes-cbc-hmac-sha256", 0x4B4D0003, 2, bytes(range(0x40, 0x50)),
             bytes(range(0x60, 0x80)), bytes(range(0x70, 0x80)), BU),
    null_hmac("null-hmac-sha256", 0x4B4D0004, 7, bytes(range(0x20, 0x40)), BA),
]
print(json.dumps(out, indent=1))
