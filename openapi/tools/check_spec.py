#!/usr/bin/env python3
"""Structural rules for Herald's OpenAPI document (a gate of scripts/contract).

    python3 openapi/tools/check_spec.py [openapi/openapi.json]

- the document is OpenAPI 3.0.x;
- every operation has an operationId (unique), at least one tag, and a summary;
- every 4xx/5xx response (and `default`) is `application/problem+json` whose schema is
  `$ref: #/components/schemas/Problem`, and nothing else (except the EXCEPTIONS below);
- every `$ref` resolves.

Exits 1 listing every violation.
"""

import json
import sys
from pathlib import Path

# Error responses that are deliberately not problem details, with the reason (keep this short;
# openapi/README.md lists them too).
EXCEPTIONS = {
    ("GET", "/health", "503"): "api.md defines this body: the Health document with status unhealthy",
    ("GET", "/health/ready", "503"): "a readiness probe answers with its Probe document (status + reason)",
}

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBLEM_REF = "#/components/schemas/Problem"


def media_type(key: str) -> str:
    return key.split(";", 1)[0].strip().lower()


def resolve(doc: dict, ref: str):
    if not ref.startswith("#/"):
        raise KeyError(ref)
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[part]
    return node


def walk_refs(node, doc, where, problems):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                resolve(doc, ref)
            except (KeyError, TypeError):
                problems.append(f"{where}: unresolved $ref {ref}")
        for key, value in node.items():
            walk_refs(value, doc, f"{where}/{key}", problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk_refs(value, doc, f"{where}/{i}", problems)


def check(doc: dict) -> list[str]:
    problems: list[str] = []
    version = str(doc.get("openapi", ""))
    if not version.startswith("3.0."):
        problems.append(f"openapi: expected 3.0.x, found {version!r}")
    if PROBLEM_REF.rsplit("/", 1)[1] not in doc.get("components", {}).get("schemas", {}):
        problems.append("components.schemas.Problem is missing")

    seen_ids: dict[str, str] = {}
    for path, item in (doc.get("paths") or {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            name = f"{method.upper()} {path}"
            op_id = op.get("operationId")
            if not op_id:
                problems.append(f"{name}: no operationId")
            elif op_id in seen_ids:
                problems.append(f"{name}: operationId {op_id!r} also used by {seen_ids[op_id]}")
            else:
                seen_ids[op_id] = name
            if not op.get("tags"):
                problems.append(f"{name}: no tags")
            if not str(op.get("summary", "")).strip():
                problems.append(f"{name}: no summary")
            # SDK generators turn descriptions into doc comments: every parameter has one.
            for parameter in op.get("parameters") or []:
                if not str(parameter.get("description", "")).strip():
                    problems.append(f"{name}: parameter {parameter.get('name')!r} has no description")
            responses = op.get("responses") or {}
            if not responses:
                problems.append(f"{name}: no responses")
            for status, response in responses.items():
                status = str(status)
                if not (status[0] in "45" or status == "default"):
                    continue
                where = f"{name} {status}"
                if (method.upper(), path, status) in EXCEPTIONS:
                    continue
                if "$ref" in response:
                    try:
                        response = resolve(doc, response["$ref"])
                    except (KeyError, TypeError):
                        continue  # reported by walk_refs
                content = response.get("content") or {}
                types = {media_type(k): v for k, v in content.items()}
                if set(types) != {"application/problem+json"}:
                    problems.append(
                        f"{where}: content must be only application/problem+json, found {sorted(content) or 'none'}"
                    )
                body = types.get("application/problem+json")
                if body is not None and (body.get("schema") or {}).get("$ref") != PROBLEM_REF:
                    problems.append(f"{where}: schema must be $ref {PROBLEM_REF}, found {body.get('schema')}")

    # ...and every property of every schema (a `$ref` is described by its target).
    for schema_name, schema in (doc.get("components", {}).get("schemas") or {}).items():
        for prop, value in (schema.get("properties") or {}).items():
            if "$ref" not in value and not str(value.get("description", "")).strip():
                problems.append(f"schema {schema_name}.{prop} has no description")

    walk_refs(doc, doc, "#", problems)
    return problems


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "openapi/v1/openapi.json")
    doc = json.loads(path.read_text())
    problems = check(doc)
    count = sum(
        1 for item in (doc.get("paths") or {}).values() for m in METHODS if m in item
    )
    if problems:
        print(f"check_spec: {len(problems)} problem(s) in {path}:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"check_spec: {path} OK ({count} operations, OpenAPI {doc.get('openapi')})")
    for (method, p, status), reason in EXCEPTIONS.items():
        print(f"  allowed exception: {method} {p} {status} is not problem+json: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
