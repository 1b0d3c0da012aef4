"""The schema-driven fuzz run of scripts/test, on one backend.

Starts the built server on the given database, seeds it with a tenant tree (a partner,
an account, products with and without webhooks, activations, customers, a conflict
record, deliveries, keys) so that every operation has real ids to work on, writes a
schemathesis configuration naming those ids, and runs schemathesis with every check
and every phase (examples, coverage, fuzzing, stateful). Exits non-zero when any check
fails.

    python api_fuzz.py BINARY DATABASE_URL WORKDIR

FUZZ_SEED (default 1), FUZZ_EXAMPLES (default 25) and FUZZ_SECONDS (a time budget; by
default none) explore further.
"""

import http.server
import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


class Receiver(http.server.BaseHTTPRequestHandler):
    """A product's webhook endpoint: takes every delivery."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


# Likewise customers: deleting one, or merging it away, uses it up. Each pass gets its
# own, and the two operations that use them up get their own within it.
CUSTOMERS_SHARED = 15
CUSTOMERS_USED_UP = {"customers_remove": 5, "customers_merge": 5, "customers_erase": 5}
CUSTOMERS_EACH = CUSTOMERS_SHARED + sum(CUSTOMERS_USED_UP.values())
# Resolving a conflict record uses it up: each pass gets its own records for each of the
# three resolutions, so the first one each operation draws is still pending.
CONFLICT_OPERATIONS = ["conflicts_keep", "conflicts_merge", "conflicts_discard"]
CONFLICTS_EACH = 8
PASSES = 2
CONFLICTS = CONFLICTS_EACH * len(CONFLICT_OPERATIONS) * PASSES
CUSTOMERS = CUSTOMERS_EACH * PASSES


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, base, key):
        self.base, self.key = base, key

    def call(self, method, path, body=None, key=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {key or self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def ok(self, method, path, body=None, key=None):
        status, answer = self.call(method, path, body, key)
        if status >= 300:
            raise SystemExit(f"seeding: {method} {path} answered {status}: {answer}")
        return answer


def seed(client, hook_url):
    """The tenant tree every operation is fuzzed against; returns the ids and keys."""
    partner = client.ok("POST", "/v1/partners", {"name": "Fuzz reseller"})["partner_id"]
    account, _ = [
        client.ok(
            "POST", "/v1/accounts", {"partner_id": partner, "name": f"Fuzz salon {i}", "default_region": "CA"}
        )["account_id"]
        for i in range(2)
    ]
    products = {}
    for name, sync, hook in [("a", "two_way", True), ("b", "two_way", True), ("c", "one_way", False)]:
        body = {"name": f"Fuzz app {name}", "partner_id": partner}
        if hook:
            body["webhook_url"] = hook_url
        created = client.ok("POST", "/v1/products", body)
        products[name] = (created["product_id"], created["api_key"])
        client.ok("PUT", f"/v1/accounts/{account}/products/{created['product_id']}", {"sync": sync})
    a_id, a_key = products["a"]
    customers = []
    # Plenty of each: the fuzzer deletes, merges and resolves what it is given, and every
    # operation must still find live ones to answer 2xx to.
    for i in range(CUSTOMERS):
        record = client.ok(
            "POST",
            "/v1/customers",
            {
                "account_id": account,
                "id": f"crm-{i}",
                "first_name": f"Ada{i}",
                "last_name": "Lovelace",
                "email": f"ada{i}@example.com",
                "tags": ["vip"],
            },
            key=a_key,
        )
        customers.append(record["customer_id"])
    conflicts = []
    for i in range(CONFLICTS):
        status, problem = client.call(
            "POST",
            "/v1/customers",
            {"account_id": account, "email": f"ada{i}@example.com", "first_name": "Augusta"},
            key=products["b"][1],
        )
        if status != 409 or "conflict_id" not in (problem or {}):
            raise SystemExit(f"seeding: a duplicate create answered {status}: {problem}")
        conflicts.append(problem["conflict_id"])
    deliveries = []
    for _ in range(100):
        page = client.ok("GET", f"/v1/products/{products['b'][0]}/deliveries")
        deliveries = [d["delivery_id"] for d in page["deliveries"]]
        if len(deliveries) >= 2:
            break
        time.sleep(0.1)
    keys = [client.ok("POST", f"/v1/accounts/{account}/keys", {})["key_id"] for _ in range(3)]
    # An import with a failed row, for its progress and its error file.
    request = urllib.request.Request(
        f"{client.base}/v1/imports?account_id={account}",
        data=b"email,first_name\nnot-an-email,Ada\nimported@example.com,Grace\n",
        method="POST",
    )
    request.add_header("Authorization", f"Bearer {client.key}")
    request.add_header("Content-Type", "text/csv")
    with urllib.request.urlopen(request, timeout=10) as response:
        imports = [json.loads(response.read())["import_id"]]
    # One cursor per list and sort, as a client paging gets them (see the hooks).
    pages = {}
    sorts = ["created", "-created", "last_name", "-last_name", "first_name", "-first_name"]
    for path in ["/v1/customers", "/v1/conflicts"]:
        for sort in sorts:
            page = client.ok("GET", f"{path}?account_id={account}&page_size=1&sort={sort}")
            pages[f"{path}|{sort}"] = page["next_cursor"]
    pages["/v1/accounts|created"] = client.ok("GET", "/v1/accounts?page_size=1")["next_cursor"]
    pages["/v1/products/{product_id}/deliveries|created"] = client.ok(
        "GET", f"/v1/products/{products['b'][0]}/deliveries?page_size=1"
    )["next_cursor"]
    pages["/v1/events|created"] = client.ok("GET", "/v1/events?limit=1", key=a_key)["next_cursor"]
    missing = [name for name, cursor in pages.items() if not cursor]
    if missing:
        raise SystemExit(f"seeding: no second page for {missing}")
    return {
        "cursors": pages,
        "partner": partner,
        "account": account,
        "products": products,
        "customers": customers,
        "conflicts": conflicts,
        "deliveries": deliveries,
        "keys": keys,
        "imports": imports,
    }


def config(seeded, key, pass_index):
    """schemathesis.toml: ids drawn from the seeded ones most of the time (the rest is
    generated, so malformed and unknown ids are still tried), sent with `key`."""
    mine = seeded["customers"][pass_index * CUSTOMERS_EACH : (pass_index + 1) * CUSTOMERS_EACH]
    dictionaries = {
        "customer_id": mine[:CUSTOMERS_SHARED],
        "conflict_id": seeded["conflicts"],
        "account_id": [seeded["account"]],
        "product_id": [p for p, _ in seeded["products"].values()],
        "partner_id": [seeded["partner"]],
        "key_id": seeded["keys"],
        "import_id": seeded["imports"],
        "delivery_id": seeded["deliveries"] or ["none"],
        "vendor_customer_id": [f"crm-{i}" for i in range(CUSTOMERS)],
    }
    used_up = {}
    start = CUSTOMERS_SHARED
    for operation, count in CUSTOMERS_USED_UP.items():
        dictionaries[f"{operation}_pool"] = mine[start : start + count]
        used_up[operation] = f"{operation}_pool"
        start += count
    for index, operation in enumerate(CONFLICT_OPERATIONS):
        start = (pass_index * len(CONFLICT_OPERATIONS) + index) * CONFLICTS_EACH
        dictionaries[operation] = seeded["conflicts"][start : start + CONFLICTS_EACH]
    lines = ["[dictionaries]"]
    for name, values in dictionaries.items():
        lines.append(f"{name} = {{ values = {json.dumps(values)} }}")
    lines += ["", "[parameters]"]
    for name in dictionaries:
        for location in ["path", "query"]:
            lines.append(f'"{location}.{name}" = {{ dictionary = "{name}", probability = 0.8 }}')
    for field in ["account_id", "partner_id"]:
        lines.append(f'"body.{field}" = {{ dictionary = "{field}", probability = 0.8 }}')
    lines += ["", "[auth.openapi.bearer]", f'bearer = "{key}"']
    # Any warning fails the run: an operation left answering only 404 (no test data) or
    # only 400 (the document looser than the validation) is a gap, not a pass.
    lines += ["", "[warnings]", "fail-on = true"]
    # The customer a merge absorbs (`from`), the one a delete removes and the one an
    # erasure forgets.
    for operation, key in [
        ("customers_merge", "body.from"),
        ("customers_remove", "path.customer_id"),
        ("customers_erase", "path.customer_id"),
    ]:
        lines += [
            "",
            "[[operations]]",
            f'include-operation-id = "{operation}"',
            f'parameters = {{ "{key}" = {{ dictionary = "{used_up[operation]}", probability = 0.8 }} }}',
        ]
    for operation in CONFLICT_OPERATIONS:
        lines += [
            "",
            "[[operations]]",
            f'include-operation-id = "{operation}"',
            f'parameters = {{ "path.conflict_id" = {{ dictionary = "{operation}", probability = 0.8 }} }}',
        ]
    # A precondition that does not hold (If-Match naming another version) is the
    # request's answer, not a refusal of its data: like 409, it depends on what is stored.
    lines += [
        "",
        "[checks.positive_data_acceptance]",
        'expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]',
    ]
    return "\n".join(lines) + "\n"


def phase_counts(report_dir):
    """Test cases and requests per phase, from the run's ndjson report."""
    cases, calls = {}, {}
    for path in sorted(pathlib.Path(report_dir).glob("*.ndjson")):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            phase = finished.get("phase", "?")
            recorder = finished.get("recorder") or {}
            cases[phase] = cases.get(phase, 0) + len(recorder.get("cases") or {})
            calls[phase] = calls.get(phase, 0) + len(recorder.get("interactions") or {})
    return ", ".join(f"{phase}: {cases[phase]} cases, {calls[phase]} requests" for phase in cases) or "no report"


def main():
    binary, database_url, workdir = sys.argv[1:4]
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    receiver_port = free_port()
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", receiver_port), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()

    port = free_port()
    admin_key = "fuzz-admin-key-" + secrets.token_hex(16)
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("CUSTOMER_LIST_")
    }
    env.update(
        CUSTOMER_LIST_DATABASE_URL=database_url,
        CUSTOMER_LIST_ADMIN_KEY=admin_key,
        CUSTOMER_LIST_LISTEN=f"127.0.0.1:{port}",
        CUSTOMER_LIST_RATE_LIMIT="1000000",
        CUSTOMER_LIST_WEBHOOK_ALLOWED_CIDRS="127.0.0.1/32",
        RUST_LOG="warn",
    )
    log = open(workdir / "server.log", "wb")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        seeded = seed(Client(base, admin_key), f"http://127.0.0.1:{receiver_port}/hook")
        (workdir / "cursors.json").write_text(json.dumps(seeded["cursors"]))
        # Two passes: the customer-side operations (and /v1/me) as a product on the
        # account (some only a product may call: its feed, its own ids; not /v1/keys,
        # where the fuzzer would find and revoke the very key it runs with); then every
        # other operation, and the
        # customer-side ones an admin may call, as the admin. The product goes first: the
        # admin's pass deactivates products and revokes keys.
        product_only = "^/v1/(events|customers/associations|customers/[^/]+/vendor-id)$"
        passes = [
            ("product", seeded["products"]["a"][1], ["--include-path-regex", "^/v1/(customers|conflicts|events|me)$|^/v1/(customers|conflicts)/"], {}),
            (
                "admin",
                admin_key,
                ["--exclude-path-regex", product_only],
                {"FUZZ_ACCOUNT_FOR_CREATES": seeded["account"]},
            ),
        ]
        status = 0
        assert len(passes) == PASSES
        for pass_index, (name, key, selection, pass_env) in enumerate(passes):
            config_file = workdir / f"schemathesis-{name}.toml"
            config_file.write_text(config(seeded, key, pass_index))
            command = [
                str(pathlib.Path(sys.executable).parent / "st"),
                "--config-file",
                str(config_file),
                "run",
                f"{base}/openapi.json",
                *selection,
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                os.environ.get("FUZZ_EXAMPLES", "25"),
                "--seed",
                os.environ.get("FUZZ_SEED", "1"),
                # One worker: CPython 3.11's parser is not safe across schemathesis'
                # threads ("AST constructor recursion depth mismatch" errors).
                "--workers",
                "1",
                "--no-color",
                "--report",
                "har,ndjson",
                "--report-dir",
                str(workdir / f"report-{name}"),
            ]
            if os.environ.get("FUZZ_SECONDS"):
                command += ["--max-time", os.environ["FUZZ_SECONDS"]]
            hook_env = dict(
                os.environ,
                PYTHONPATH=str(pathlib.Path(__file__).parent),
                SCHEMATHESIS_HOOKS="schemathesis_hooks",
                FUZZ_CURSORS=str(workdir / "cursors.json"),
                **pass_env,
            )
            with open(workdir / f"fuzz-{name}.log", "wb") as out:
                ran = subprocess.run(command, env=hook_env, stdout=out, stderr=subprocess.STDOUT, timeout=1500)
            print(f"pass {name}: exit {ran.returncode}; {phase_counts(workdir / f'report-{name}')}", flush=True)
            status = status or ran.returncode
    finally:
        server.terminate()
        server.wait(timeout=10)
        receiver.shutdown()
    sys.exit(status)


if __name__ == "__main__":
    main()
