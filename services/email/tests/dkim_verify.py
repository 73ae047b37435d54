#!/usr/bin/env python3
"""Independent DKIM verifier for the email service's tests (dkimpy, deploy/local/requirements.txt).

    dkim_verify.py --dns '<selector>._domainkey.<domain>=v=DKIM1; k=rsa; p=<base64>' ... MESSAGE.eml ...

Each --dns answers the TXT query for that name (no real DNS is asked; any other name is
NXDOMAIN). Every message's topmost DKIM-Signature is verified with dkimpy, which prints one line
per message:

    PASS <file> d=<domain> s=<selector> a=<algorithm> c=<canonicalization> h=<signed headers>
    FAIL <file> <why>

and the exit status is 0 only when every message passed.
"""
import argparse
import logging
import sys

import dkim


class Collect(logging.Handler):
    """Keeps dkimpy's own words for why a signature failed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dns", action="append", default=[], metavar="NAME=TXT")
    parser.add_argument("messages", nargs="+")
    args = parser.parse_args()

    records = {}
    for entry in args.dns:
        name, sep, txt = entry.partition("=")
        if not sep:
            parser.error(f"--dns {entry!r}: expected NAME=TXT")
        records[name.strip().rstrip(".").lower()] = txt.encode()
    asked = []

    def dnsfunc(name, timeout=5):
        key = (name.decode() if isinstance(name, bytes) else name).rstrip(".").lower()
        asked.append(key)
        return records.get(key)

    failed = 0
    for path in args.messages:
        with open(path, "rb") as f:
            message = f.read()
        collect = Collect()
        logger = logging.getLogger(f"dkim_verify.{len(asked)}.{path}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(collect)
        verifier = dkim.DKIM(message, logger=logger)
        try:
            ok = verifier.verify(dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            ok = False
            collect.lines.append(f"{type(e).__name__}: {e}")
        if ok:
            sig = verifier.signature_fields
            # Tag values may be folded: drop the whitespace (h= becomes `from:to:...`).
            tags = " ".join(
                f"{tag}={''.join(sig[tag.encode()].decode().split())}"
                for tag in ("d", "s", "a", "c", "h")
                if tag.encode() in sig
            )
            print(f"PASS {path} {tags}")
        else:
            failed += 1
            why = [line for line in collect.lines if not line.startswith("sig:")][-3:]
            print(f"FAIL {path} {' | '.join(why) or 'no DKIM-Signature'} (dns asked: {asked[-1:]})")
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
