#!/usr/bin/env python3
"""The compatibility gate of released ("blessed") API documents.

A released document may change only in additive, backward-compatible ways: new operations, new
error responses (4xx/5xx) on an operation, new optional response headers, new schemas for new
operations, and documentation (descriptions, summaries, examples, `deprecated` flags, `x-`
extensions, tags). Anything else that exists in the blessed document must be there unchanged:
every operation with its parameters, request body and responses (status codes, media types,
schemas, required headers), every component schema, the security schemes. Unlike the
breaking-change gate of the version under development, nothing can be declared here: a change
that is not additive goes into a new version (see openapi/README.md, "Starting v3").

    python3 openapi/tools/check_compat.py BLESSED CURRENT

Exits 1 and prints one line per finding when CURRENT is not an additive change of BLESSED.
"""

import json
import sys
from pathlib import Path

# Keys that document and never change what goes over the wire.
DOC_KEYS = {"description", "summary", "example", "examples", "deprecated", "externalDocs", "title"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


# Maps keyed by names (a property may be called `title` or `description`): keep every key.
NAMED_MAPS = {"properties", "headers", "content", "responses", "schemas", "paths", "securitySchemes", "encoding"}


def wire(value, named=False):
    """`value` without its documentation: what a client's code depends on."""
    if isinstance(value, dict):
        if named:
            return {k: wire(v) for k, v in value.items()}
        return {
            k: wire(v, named=k in NAMED_MAPS)
            for k, v in value.items()
            if k not in DOC_KEYS and not k.startswith("x-")
        }
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def same(a, b):
    return json.dumps(wire(a), sort_keys=True) == json.dumps(wire(b), sort_keys=True)


def check(blessed, current):
    findings = []

    def add(where, what):
        findings.append(f"{where}: {what}")

    major = lambda doc: str(doc.get("info", {}).get("version", "0")).split(".")[0]
    if major(blessed) != major(current):
        add("info.version", f"major version changed {blessed['info']['version']} -> {current['info']['version']} (a new major is a new document: start v{int(major(blessed)) + 1})")
    if blessed.get("openapi") != current.get("openapi"):
        add("openapi", f"{blessed.get('openapi')} -> {current.get('openapi')}")

    for path, item in blessed.get("paths", {}).items():
        now_item = current.get("paths", {}).get(path)
        if now_item is None:
            add(path, "path removed")
            continue
        if not same(item.get("parameters", []), now_item.get("parameters", [])):
            add(path, "path-level parameters changed")
        for method, op in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            now_op = now_item.get(method)
            if now_op is None:
                add(where, "operation removed")
                continue
            if op.get("operationId") != now_op.get("operationId"):
                add(where, f"operationId {op.get('operationId')} -> {now_op.get('operationId')} (renames generated SDK methods)")
            if not same(op.get("parameters", []), now_op.get("parameters", [])):
                add(where, "parameters changed")
            if not same(op.get("requestBody"), now_op.get("requestBody")):
                add(where, "request body changed")
            if not same(op.get("security"), now_op.get("security")):
                add(where, "security changed")
            responses, now_responses = op.get("responses", {}), now_op.get("responses", {})
            for status, response in responses.items():
                now_response = now_responses.get(status)
                if now_response is None:
                    add(where, f"response {status} removed")
                    continue
                if not same(response.get("content"), now_response.get("content")):
                    add(where, f"response {status} content changed")
                headers = response.get("headers", {})
                now_headers = now_response.get("headers", {})
                for name, header in headers.items():
                    if name not in now_headers:
                        add(where, f"response {status} header {name} removed")
                    elif not same(header, now_headers[name]):
                        add(where, f"response {status} header {name} changed")
                for name, header in now_headers.items():
                    if name not in headers and header.get("required"):
                        add(where, f"response {status} adds a required header {name}")
            for status in now_responses:
                if status not in responses and not status[:1] in ("4", "5"):
                    add(where, f"new {status} response (only error responses may be added)")

    for name, schema in blessed.get("components", {}).get("schemas", {}).items():
        now_schema = current.get("components", {}).get("schemas", {}).get(name)
        if now_schema is None:
            add(f"schema {name}", "removed")
        elif not same(schema, now_schema):
            add(f"schema {name}", "changed")
    if not same(
        blessed.get("components", {}).get("securitySchemes"),
        current.get("components", {}).get("securitySchemes"),
    ):
        add("securitySchemes", "changed")
    return findings


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    blessed_path, current_path = Path(sys.argv[1]), Path(sys.argv[2])
    blessed = json.loads(blessed_path.read_text())
    current = json.loads(current_path.read_text())
    findings = check(blessed, current)
    if findings:
        print(f"check_compat: {current_path} is not an additive change of the released {blessed_path}:")
        for finding in findings:
            print(f"  {finding}")
        print("A released document only grows. Put the change in the version under development (or start a new one: openapi/README.md).")
        return 1
    paths = lambda d: sum(1 for item in d.get("paths", {}).values() for m in item if m in METHODS)
    print(
        f"check_compat: {current_path} keeps every operation, parameter, body, response and schema "
        f"of the released {blessed_path} ({paths(blessed)} operations then, {paths(current)} now)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
