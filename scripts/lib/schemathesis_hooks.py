"""Hooks for the schema-driven fuzz run of scripts/test.

A client sends a fresh Idempotency-Key with each distinct request (the document says
so). Schemathesis draws header values from the schema, so its cases share a handful
of keys, and the hub answers such a repeat with another body as SPEC section 4 says:
422 idempotency_key_reused. A well-formed key is made fresh per request, as a careful
client makes it; a malformed one is kept, so the fuzzer still sees the hub refuse it.
"""

import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"[!-~]{1,255}")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and WELL_FORMED.fullmatch(str(headers[name])):
            headers[name] = str(uuid.uuid4())
