"""Self-test of the released-document gate: it must refuse every kind of change it names and
allow the additive ones. Run by scripts/contract's `compatibility` gate before the real check."""

import copy
import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from check_compat import check  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BLESSED = json.loads((ROOT / "openapi/baseline/v1/openapi.json").read_text())


def changed(edit):
    doc = copy.deepcopy(BLESSED)
    edit(doc)
    return check(BLESSED, doc)


class CompatibilityGate(unittest.TestCase):
    def test_the_blessed_document_is_compatible_with_itself(self):
        self.assertEqual(check(BLESSED, BLESSED), [])

    def test_additive_changes_pass(self):
        def additive(doc):
            doc["paths"]["/v1/new-thing"] = {"get": {"operationId": "get_new_thing", "responses": {"200": {"description": "ok"}}}}
            op = doc["paths"]["/v1/posts"]["get"]
            op["description"] = "Reworded."
            op["deprecated"] = True
            op["x-problem-codes"] = ["RATE_LIMITED"]
            op["responses"]["200"].setdefault("headers", {})["Sunset"] = {"required": False, "schema": {"type": "string"}}
            op["responses"]["503"] = copy.deepcopy(op["responses"]["429"])
            doc["info"]["version"] = "1.1.0"
            doc["components"]["schemas"]["NewThing"] = {"type": "object"}
        self.assertEqual(changed(additive), [])

    def test_every_breaking_kind_is_refused(self):
        post = lambda d: d["paths"]["/v1/posts"]["post"]
        cases = {
            "operation removed": lambda d: d["paths"]["/v1/posts"].pop("post"),
            "path removed": lambda d: d["paths"].pop("/v1/airports"),
            "operationId": lambda d: post(d).update(operationId="create_a_post"),
            "parameters changed": lambda d: d["paths"]["/v1/posts"]["get"]["parameters"].pop(),
            "request body changed": lambda d: post(d)["requestBody"].update(required=False),
            "response 201 removed": lambda d: post(d)["responses"].pop("201"),
            "content changed": lambda d: post(d)["responses"]["201"]["content"].clear(),
            "required header": lambda d: post(d)["responses"]["201"]["headers"].update(
                {"X-New": {"required": True, "schema": {"type": "string"}}}
            ),
            "new 202 response": lambda d: post(d)["responses"].update({"202": {"description": "later"}}),
            "schema Post": lambda d: d["components"]["schemas"]["Post"]["properties"]["title"].update(maxLength=10),
            "security changed": lambda d: post(d).update(security=[]),
            "major version": lambda d: d["info"].update(version="2.0.0"),
        }
        for expected, edit in cases.items():
            with self.subTest(expected):
                findings = changed(edit)
                self.assertTrue(any(expected in f for f in findings), f"{expected}: {findings}")


if __name__ == "__main__":
    unittest.main()
