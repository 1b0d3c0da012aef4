"""Hooks for the schema-driven fuzz run of scripts/test.

A client sends a fresh Idempotency-Key with each distinct request (the document says
so). Schemathesis draws header values from the schema, so its cases share a handful
of keys, and the hub answers such a repeat with another body as SPEC section 4 says:
422 idempotency_key_reused. A well-formed key is made fresh per request, as a careful
client makes it; a malformed one is kept, so the fuzzer still sees the hub refuse it.
"""

import json
import os
import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"[!-~]{1,255}")

# Cursors are opaque: a well-formed one is one the hub handed out for the same list and
# sort, which a schema cannot generate. The fuzz run's seeding (api_fuzz.py) pages each
# list once and keeps the cursors it got, keyed "<path>|<sort>"; a case generated as
# valid gets such a cursor, as a client paging does. Cases generated as invalid keep
# theirs, so the fuzzer still sees malformed cursors refused.
_CURSORS = None


def cursors():
    global _CURSORS
    if _CURSORS is None:
        path = os.environ.get("FUZZ_CURSORS")
        _CURSORS = json.load(open(path)) if path else {}
    return _CURSORS


def is_positive(case):
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    return bool(mode is not None and mode.is_positive)


# An admin or partner key creates a customer in an account it names (`403` without one:
# which key may omit it is the key's scope, which a schema cannot state). A case
# generated as valid, sent with such a key, names the seeded account, as such a client
# does.
ACCOUNT_FOR_CREATES = os.environ.get("FUZZ_ACCOUNT_FOR_CREATES")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    body = case.body
    if (
        ACCOUNT_FOR_CREATES
        and case.method.upper() == "POST"
        and case.operation.path == "/v1/customers"
        and isinstance(body, dict)
        and body.get("account_id") is None
        and is_positive(case)
    ):
        body["account_id"] = ACCOUNT_FOR_CREATES
    # Whether a patch's consent object goes with a change of consent is the stored
    # customer's to say (`400` on `consent` when not), which no schema can state; the
    # suite tests both outcomes (tests/api/privacy.rs). A valid patch is sent without it.
    if (
        case.method.upper() == "PATCH"
        and case.operation.path == "/v1/customers/{customer_id}"
        and isinstance(body, dict)
        and is_positive(case)
    ):
        body.pop("consent", None)
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and WELL_FORMED.fullmatch(str(headers[name])):
            headers[name] = str(uuid.uuid4())
    query = case.query
    if query and is_positive(case):
        for name in ("cursor", "after"):
            if name in query:
                sort = query.get("sort", "created")
                known = cursors().get(f"{case.operation.path}|{sort}")
                if known is None:
                    del query[name]
                else:
                    query[name] = known


# Formats whose validity a pattern cannot state, so the document names them and the
# hub's libraries decide (libphonenumber for `phone`; RFC 5322 syntax with a dotted
# domain and no domain literal for `email-address`): schemathesis is told what valid values of
# them look like, so a value it generates as valid is one. Invalid ones it still makes
# by breaking the type, length and pattern; the parsers themselves are fuzzed by
# scripts/fuzz (cargo-fuzz targets phone_email and customer_json).
from hypothesis import strategies as st

VALID_PHONES = [
    "+13065550100",
    "+1 306 555 0101",
    "+1 (306) 555-0102",
    "+14165550103",
    "+442079460104",
    "+44 20 7946 0105",
    "+33 1 45 67 89 10",
    "+4930123456",
    "+61 2 9876 5432",
]
schemathesis.openapi.format("phone", st.sampled_from(VALID_PHONES))
schemathesis.openapi.format(
    "email-address",
    st.from_regex(r"\A[a-z0-9]{1,16}(\.[a-z0-9]{1,8})?@[a-z0-9]{1,16}\.(com|org|ca|io)\Z"),
)

# An import's file (SPEC section 12): a header naming fields, then rows. A row's bad
# value is the row's failure (the error file), not the request's; a header that names
# no field is refused before anything is stored, which no schema can state.
IMPORT_FIELDS = ["first_name", "last_name", "email", "phone", "city", "tags", "permission_to_contact"]
CELL = st.from_regex(r"\A[a-z0-9@. +]{0,12}\Z")


def csv_text(columns):
    row = st.lists(CELL, min_size=len(columns), max_size=len(columns)).map(",".join)
    return st.lists(row, max_size=3).map(lambda rows: "\n".join([",".join(columns), *rows]) + "\n")


schemathesis.openapi.format(
    "csv-file",
    st.lists(st.sampled_from(IMPORT_FIELDS), min_size=1, max_size=4, unique=True).flatmap(csv_text),
)
# A mapping names columns of the file it goes with: the empty one fits every file.
schemathesis.openapi.format("import-mapping", st.just("{}"))
