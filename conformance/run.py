#!/usr/bin/env python3
"""Runs schemathesis against a real porta-server binary.

Starts the server on 127.0.0.1 with a temporary database (--demo --dev-outbox), signs in
through the dev outbox as a resident, enrolls a real Ed25519 device key, and runs every
schemathesis check against the server's own /openapi.json; the admin operations (/v1/admin)
then run as an operator (--operator). Destructive operations (sign-out,
revoking a device, deleting the account) run afterwards, each alone as a fresh user of its
own, so they cannot end the session another run uses. See README.md.

Usage: run.py --server-bin PATH --out-dir DIR [--max-examples N] [--timeout SECONDS]
Writes one JUnit XML report per run into DIR and prints a closing line
`conformance: N passed, M failed` (one test per operation, plus the stateful phase).
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = Path(__file__).resolve().parent
ENROLL_CONTEXT = b"porta-enroll-v1"
MAIN_USER = "ada@demo.porta.app"
# The admin operations run as an operator (admin of every site), given on the command line.
OPERATOR = "conformance-operator@example.com"
ADMIN_PATHS = "^/v1/admin"
# The partner API runs with a partner key of the demo site, made by the operator.
PARTNER_PATHS = "^/v1/partner"

# Operations that end the session or the account they run as. Only in the destructive run.
DESTRUCTIVE = [
    ("POST", "/v1/auth/sign-out"),
    ("DELETE", "/v1/me/devices/{device_id}"),
    ("POST", "/v1/me/delete"),
    ("POST", "/delete-account/confirm"),
]


def call(base, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def b64(data):
    return base64.b64encode(data).decode()


def signed_in_with_device_key(base, identifier):
    """Signs in through the dev outbox and enrolls a fresh Ed25519 device key; returns the access token."""
    status, body = call(base, "POST", "/v1/auth/code", {"identifier": identifier})
    assert status == 202, (status, body)
    status, body = call(base, "GET", f"/v1/dev/outbox/{identifier}")
    assert status == 200, (status, body)
    code = body["code"]
    status, tokens = call(
        base, "POST", "/v1/auth/sign-in", {"identifier": identifier, "code": code, "device_name": "schemathesis"}
    )
    assert status == 200, (status, tokens)
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = key.sign(ENROLL_CONTEXT + tokens["session_id"].encode() + public)
    status, body = call(
        base,
        "POST",
        "/v1/me/device-key",
        {"public_key": b64(public), "signature": b64(signature)},
        token=tokens["access_token"],
    )
    assert status == 201, (status, body)
    # The key is real: the doors sync needs it and must now succeed.
    status, body = call(base, "GET", "/v1/me/doors", token=tokens["access_token"])
    assert status == 200, (status, body)
    return tokens["access_token"]


def start_server(server_bin, db_path):
    proc = subprocess.Popen(
        [
            server_bin,
            "--listen",
            "127.0.0.1:0",
            "--demo",
            "--dev-outbox",
            "--exit-on-stdin-eof",
            "--operator",
            OPERATOR,
            # Likewise for the operator's admin changes: a 429 would leave their logic untested.
            "--admin-writes-per-window",
            "1000000",
            # And for the partner key's reads.
            "--partner-reads-per-window",
            "1000000",
            # schemathesis asks for many codes from one IP; 429 is documented, but the
            # setup's own sign-ins must not be refused.
            "--code-requests-per-ip",
            "1000000",
            "--db",
            str(db_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline().strip()
    prefix = "porta-server listening on "
    if not line.startswith(prefix):
        proc.kill()
        raise SystemExit(f"conformance: unexpected first line from porta-server: {line!r}")
    return proc, line[len(prefix):]


def partner_key(base):
    """Makes a partner key of the demo site as the operator; returns its secret."""
    token = signed_in_with_device_key(base, OPERATOR)
    status, sites = call(base, "GET", "/v1/admin/sites", token=token)
    assert status == 200, (status, sites)
    site = sites[0]["id"]
    status, key = call(base, "POST", f"/v1/admin/sites/{site}/partner-keys", {"label": "Conformance"}, token=token)
    assert status == 201, (status, key)
    return key["secret"]


def schemathesis(base, token, out_dir, name, filters, max_examples, timeout, partner=""):
    junit = out_dir / f"{name}.xml"
    junit.unlink(missing_ok=True)
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--seed",
        os.environ.get("PORTA_CONFORMANCE_SEED", "8"),
        "--workers",
        "1",
        "--no-color",
        # Reproducible: the seed alone decides the examples (no database of earlier runs).
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
        *filters,
    ]
    env = dict(os.environ, PORTA_ACCESS_TOKEN=token, PORTA_PARTNER_KEY=partner)
    print(f"==> schemathesis ({name}): {' '.join(cmd[1:])}", flush=True)
    try:
        # In out_dir: schemathesis keeps its example database in .schemathesis/ there.
        result = subprocess.run(cmd, env=env, timeout=timeout, cwd=out_dir)
        ok = result.returncode == 0
    except subprocess.TimeoutExpired:
        print(f"conformance: the {name} run did not finish within {timeout} s", flush=True)
        ok = False
    return junit, ok


def count(junit):
    """(passed, failed) over the report's test cases: one per operation."""
    if not junit.exists():
        return 0, 0
    passed = failed = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is None:
            passed += 1
    return passed, failed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--timeout", type=int, default=240, help="seconds per schemathesis run")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    # An operation's schemathesis name is "METHOD /path". The main run has everything but the
    # destructive operations; each of those then runs alone, as a fresh user of its own.
    # The admin operations run after it as an operator: as the resident they are only `403`;
    # the partner API with a partner key: with a user's token it is only `401`.
    main_filters = [f for m, p in DESTRUCTIVE for f in ("--exclude-name", f"{m} {p}")]
    plan = [
        ("main", MAIN_USER, main_filters + ["--exclude-path-regex", f"{ADMIN_PATHS}|{PARTNER_PATHS}"]),
        # Before the admin run, which may revoke keys.
        ("partner", OPERATOR, ["--include-path-regex", PARTNER_PATHS]),
        ("admin", OPERATOR, ["--include-path-regex", ADMIN_PATHS]),
    ]
    for method, path in DESTRUCTIVE:
        slug = (method + path).lower().replace("/", "-").replace("{", "").replace("}", "")
        plan.append((slug, f"conformance-{slug}@example.com", ["--include-name", f"{method} {path}"]))

    runs = []
    with tempfile.TemporaryDirectory(prefix="porta-conformance-") as tmp:
        proc, base = start_server(args.server_bin, Path(tmp) / "porta.db")
        try:
            partner = partner_key(base)
            for name, user, filters in plan:
                token = signed_in_with_device_key(base, user)
                runs.append(
                    schemathesis(base, token, args.out_dir, name, filters, args.max_examples, args.timeout, partner)
                )
        finally:
            proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    passed = failed = 0
    for junit, ok in runs:
        p, f = count(junit)
        if not ok and f == 0:
            # A run that crashed or timed out without a report counts as one failure.
            f = 1
        passed += p
        failed += f
    print(f"conformance: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
