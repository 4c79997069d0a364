#!/usr/bin/env node
// Breaking-change gate (run by scripts/contract; see openapi/README.md).
//
//   node openapi/tools/check_breaking.mjs [--base openapi/baseline/openapi.json]
//        [--head openapi/openapi.json] [--declared openapi/breaking-changes.json] [--no-optic]
//
// Two independent checks compare the committed spec (head) with the baseline:
//   1. Optic (`optic diff base head --check`), parsed into findings;
//   2. the structural diff below, for what Optic misses (narrowed lengths and ranges,
//      patterns, enum values, nullability, formats, types, removed request properties, ...).
// Every finding fails the gate unless
//   - a declaration in breaking-changes.json matches it (`match` is a substring of the
//     finding's text, `reason` says why it is accepted), or
//   - info.version's major number is higher than the baseline's (a release that accepts them;
//     the release then copies openapi.json over the baseline and empties the declarations).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? resolve(args[i + 1]) : fallback;
};
const basePath = opt("--base", join(root, "openapi/baseline/openapi.json"));
const headPath = opt("--head", join(root, "openapi/openapi.json"));
const declaredPath = opt("--declared", join(root, "openapi/breaking-changes.json"));
const useOptic = !args.includes("--no-optic");

const base = JSON.parse(readFileSync(basePath, "utf8"));
const head = JSON.parse(readFileSync(headPath, "utf8"));

// ---------------------------------------------------------------------------------------------
// Structural diff
// ---------------------------------------------------------------------------------------------
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
const findings = []; // { source, text }
const add = (source, text) => findings.push({ source, text });

const mediaType = (key) => key.split(";")[0].trim().toLowerCase();
const byMediaType = (content = {}) =>
  Object.fromEntries(Object.entries(content).map(([k, v]) => [mediaType(k), v]));

function resolveRef(doc, ref) {
  if (!ref.startsWith("#/")) throw new Error(`external $ref not supported: ${ref}`);
  return ref
    .slice(2)
    .split("/")
    .reduce((node, part) => node?.[part.replaceAll("~1", "/").replaceAll("~0", "~")], doc);
}

/** Resolves $ref chains and merges allOf parts; returns { schema, name } (name of the last $ref). */
function deref(doc, schema, name) {
  let current = schema ?? {};
  let seen = 0;
  while (current.$ref && seen++ < 32) {
    name = current.$ref.split("/").pop();
    const { $ref, ...siblings } = current;
    current = { ...resolveRef(doc, $ref), ...siblings };
  }
  if (Array.isArray(current.allOf)) {
    const { allOf, ...rest } = current;
    let merged = {};
    let partName;
    for (const part of allOf) {
      const r = deref(doc, part);
      partName ??= r.name;
      merged = {
        ...merged,
        ...r.schema,
        properties: { ...merged.properties, ...r.schema.properties },
        required: [...(merged.required ?? []), ...(r.schema.required ?? [])],
      };
    }
    current = { ...merged, ...rest };
    if (!Object.keys(current.properties ?? {}).length) delete current.properties;
    if (!current.required?.length) delete current.required;
    name = partName ?? name;
  }
  return { schema: current, name };
}

const NUMERIC_WIDER = { integer: "number" };

function compareSchema(bRaw, hRaw, where, label, dir, stack = new Set()) {
  const b = deref(base, bRaw);
  const h = deref(head, hRaw);
  // Name the location after the innermost named schema, e.g. "CreatePostRequest.title".
  const loc = b.name && b.name === h.name && bRaw?.$ref ? b.name : label;
  const key = `${dir}|${b.name}|${h.name}|${loc}`;
  if (b.name && stack.has(key)) return;
  const next = new Set(stack).add(key);
  const B = b.schema;
  const H = h.schema;
  const say = (msg) => add("structural", `${where}: ${loc} ${msg}`);
  const req = dir === "request";

  // Types
  if (B.type && H.type && B.type !== H.type) {
    const widening = req ? NUMERIC_WIDER[B.type] === H.type : NUMERIC_WIDER[H.type] === B.type;
    if (!widening) say(`type changed ${B.type} → ${H.type}`);
  } else if (req && !B.type && H.type) {
    say(`type narrowed (any) → ${H.type}`);
  } else if (!req && B.type && !H.type) {
    say(`type widened ${B.type} → (any)`);
  }
  if (B.format !== H.format) {
    if (B.format && H.format) say(`format changed ${B.format} → ${H.format}`);
    else if (req && H.format) say(`format added ${H.format}`);
    else if (!req && B.format) say(`format removed ${B.format}`);
  }
  // Nullability
  if (req && B.nullable === true && H.nullable !== true) say("no longer nullable");
  if (!req && B.nullable !== true && H.nullable === true) say("is now nullable");
  // Enums
  if (req) {
    if (Array.isArray(B.enum) && Array.isArray(H.enum)) {
      for (const v of B.enum) if (!H.enum.includes(v)) say(`enum value removed ${JSON.stringify(v)}`);
    } else if (!Array.isArray(B.enum) && Array.isArray(H.enum)) {
      say(`enum added ${JSON.stringify(H.enum)}`);
    }
  } else {
    if (Array.isArray(B.enum) && Array.isArray(H.enum)) {
      for (const v of H.enum) if (!B.enum.includes(v)) say(`enum value added to a response ${JSON.stringify(v)}`);
    } else if (Array.isArray(B.enum) && !Array.isArray(H.enum)) {
      say("enum removed from a response (any value may now appear)");
    }
  }
  // Constraints narrowed (requests only: the server now rejects what it accepted).
  if (req) {
    const upper = ["maxLength", "maximum", "maxItems", "maxProperties"];
    const lower = ["minLength", "minimum", "minItems", "minProperties"];
    for (const k of upper) {
      if (H[k] !== undefined && (B[k] === undefined || H[k] < B[k])) say(`${k} narrowed ${B[k] ?? "(none)"} → ${H[k]}`);
    }
    for (const k of lower) {
      if (H[k] !== undefined && (B[k] === undefined || H[k] > B[k])) say(`${k} narrowed ${B[k] ?? "(none)"} → ${H[k]}`);
    }
    for (const k of ["exclusiveMaximum", "exclusiveMinimum", "uniqueItems"]) {
      if (H[k] === true && B[k] !== true) say(`${k} added`);
    }
    if (H.multipleOf !== undefined && H.multipleOf !== B.multipleOf) say(`multipleOf changed ${B.multipleOf ?? "(none)"} → ${H.multipleOf}`);
    if (H.pattern !== undefined && H.pattern !== B.pattern) say(`pattern changed ${JSON.stringify(B.pattern ?? null)} → ${JSON.stringify(H.pattern)}`);
  }
  // Objects
  const bProps = B.properties ?? {};
  const hProps = H.properties ?? {};
  const bReq = new Set(B.required ?? []);
  const hReq = new Set(H.required ?? []);
  for (const [name, bProp] of Object.entries(bProps)) {
    const hProp = hProps[name];
    if (hProp === undefined) {
      // Herald rejects unknown request fields, so a removed request property breaks senders.
      say(`property removed .${name}`);
      continue;
    }
    if (!req && bReq.has(name) && !hReq.has(name)) say(`property no longer required .${name}`);
    compareSchema(bProp, hProp, where, `${loc}.${name}`, dir, next);
  }
  if (req) {
    for (const name of hReq) {
      if (!bReq.has(name)) say(`property newly required .${name}${bProps[name] ? "" : " (new)"}`);
    }
    const bAdd = B.additionalProperties;
    if (H.additionalProperties === false && bAdd !== false) say("additionalProperties now false");
  }
  if (B.items || H.items) compareSchema(B.items, H.items, where, `${loc}[]`, dir, next);
  if (typeof B.additionalProperties === "object" && typeof H.additionalProperties === "object") {
    compareSchema(B.additionalProperties, H.additionalProperties, where, `${loc}{}`, dir, next);
  }
}

const isPublic = (doc, op) => {
  const sec = op.security ?? doc.security ?? [];
  return sec.length === 0 || sec.some((alt) => Object.keys(alt).length === 0);
};

function paramKey(doc, p) {
  const param = p.$ref ? resolveRef(doc, p.$ref) : p;
  const name = param.in === "header" ? param.name.toLowerCase() : param.name;
  return [`${param.in}:${name}`, param];
}

function compareOperation(name, b, h, bItem, hItem) {
  if (isPublic(base, b) && !isPublic(head, h)) add("structural", `${name}: now requires authentication`);
  // Parameters (operation-level override path-level).
  const params = (doc, item, op) =>
    new Map([...(item.parameters ?? []), ...(op.parameters ?? [])].map((p) => paramKey(doc, p)));
  const bp = params(base, bItem, b);
  const hp = params(head, hItem, h);
  for (const [key, p] of bp) {
    const q = hp.get(key);
    if (!q) {
      add("structural", `${name}: parameter removed ${key}`);
      continue;
    }
    if (!p.required && q.required) add("structural", `${name}: parameter now required ${key}`);
    compareSchema(p.schema, q.schema, name, `parameter ${key}`, "request");
  }
  for (const [key, q] of hp) {
    if (!bp.has(key) && q.required) add("structural", `${name}: new required parameter ${key}`);
  }
  // Request body
  const bBody = b.requestBody?.$ref ? resolveRef(base, b.requestBody.$ref) : b.requestBody;
  const hBody = h.requestBody?.$ref ? resolveRef(head, h.requestBody.$ref) : h.requestBody;
  if (bBody && !hBody) add("structural", `${name}: request body removed`);
  if (!bBody && hBody?.required) add("structural", `${name}: request body now required (new)`);
  if (bBody && hBody) {
    if (!bBody.required && hBody.required) add("structural", `${name}: request body now required`);
    const bc = byMediaType(bBody.content);
    const hc = byMediaType(hBody.content);
    for (const [mt, media] of Object.entries(bc)) {
      if (!hc[mt]) add("structural", `${name}: request media type removed ${mt}`);
      else compareSchema(media.schema, hc[mt].schema, `${name} request ${mt}`, "body", "request");
    }
  }
  // Responses
  const bRes = b.responses ?? {};
  const hRes = h.responses ?? {};
  for (const [status, bR0] of Object.entries(bRes)) {
    const hR0 = hRes[status];
    if (!hR0) {
      if (/^[23]/.test(status)) add("structural", `${name}: response ${status} removed`);
      continue;
    }
    const bR = bR0.$ref ? resolveRef(base, bR0.$ref) : bR0;
    const hR = hR0.$ref ? resolveRef(head, hR0.$ref) : hR0;
    const bc = byMediaType(bR.content);
    const hc = byMediaType(hR.content);
    for (const [mt, media] of Object.entries(bc)) {
      if (!hc[mt]) add("structural", `${name}: response ${status} media type removed ${mt}`);
      else compareSchema(media.schema, hc[mt].schema, `${name} response ${status} ${mt}`, "body", "response");
    }
    const lower = (hs = {}) => Object.fromEntries(Object.entries(hs).map(([k, v]) => [k.toLowerCase(), v]));
    const bh = lower(bR.headers);
    const hh = lower(hR.headers);
    for (const [hn, hdr] of Object.entries(bh)) {
      if (hdr.required && !hh[hn]?.required) add("structural", `${name}: response ${status} header ${hn} no longer guaranteed`);
    }
  }
}

for (const [path, bItem] of Object.entries(base.paths ?? {})) {
  const hItem = head.paths?.[path];
  for (const method of METHODS) {
    const b = bItem[method];
    if (!b) continue;
    const name = `${method.toUpperCase()} ${path}`;
    const h = hItem?.[method];
    if (!h) {
      add("structural", `${name}: operation removed`);
      continue;
    }
    compareOperation(name, b, h, bItem, hItem);
  }
}

// ---------------------------------------------------------------------------------------------
// Optic
// ---------------------------------------------------------------------------------------------
let opticWarnings = [];
if (useOptic) {
  const bin = join(here, "node_modules/.bin/optic");
  if (!existsSync(bin)) {
    console.error(`check_breaking: ${relative(root, bin)} missing: run \`npm ci\` in openapi/tools`);
    process.exit(2);
  }
  const res = spawnSync(bin, ["diff", relative(root, basePath), relative(root, headPath), "--check"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", OPTIC_TELEMETRY_LEVEL: "off" },
    timeout: 180_000,
  });
  if (res.error) {
    console.error(`check_breaking: optic did not run: ${res.error.message}`);
    process.exit(2);
  }
  const out = `${res.stdout}\n${res.stderr}`.replace(/\x1b\[[0-9;]*m/g, "");
  let operation = "";
  const context = []; // [indent, text]
  let opticFindings = 0;
  for (const line of out.split("\n")) {
    let m;
    if ((m = line.match(/^[x✔] ((?:GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS|TRACE) \S+):/))) {
      operation = m[1];
      context.length = 0;
    } else if ((m = line.match(/^(\s*)x \[(.+?)\] (.*)$/))) {
      const where = context.map(([, t]) => t).join(" > ");
      add("optic", `${operation || "(spec)"}${where ? ` ${where}` : ""}: [${m[2]}] ${m[3]}`);
      opticFindings++;
    } else if ((m = line.match(/^(\s*)- (.+?):?\s*(?:changed|removed|added)?\s*$/))) {
      const indent = m[1].length;
      while (context.length && context.at(-1)[0] >= indent) context.pop();
      context.push([indent, m[2].replace(/:$/, "")]);
    } else if (/invalid .* at /.test(line) && line.includes(relative(root, headPath))) {
      opticWarnings.push(line.trim()); // problems Optic sees in the head spec
    }
  }
  if (res.status !== 0 && opticFindings === 0) {
    console.error("check_breaking: optic failed without findings that could be parsed:\n" + out);
    process.exit(2);
  }
  opticWarnings = [...new Set(opticWarnings)];
}

// ---------------------------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------------------------
const major = (v) => Number.parseInt(String(v ?? "0").split(".")[0], 10) || 0;
const baseVersion = base.info?.version;
const headVersion = head.info?.version;
const majorBump = major(headVersion) > major(baseVersion);

let declared = [];
if (existsSync(declaredPath)) {
  const file = JSON.parse(readFileSync(declaredPath, "utf8"));
  declared = file.accepted ?? [];
  for (const [i, d] of declared.entries()) {
    if (typeof d.match !== "string" || !d.match || typeof d.reason !== "string" || !d.reason.trim()) {
      console.error(`check_breaking: ${relative(root, declaredPath)}: accepted[${i}] needs a non-empty "match" and "reason"`);
      process.exit(2);
    }
  }
}
const used = new Set();
const unaccepted = [];
const accepted = [];
for (const f of findings) {
  const text = `${f.source}: ${f.text}`;
  const i = declared.findIndex((d) => text.includes(d.match));
  if (i >= 0) {
    used.add(i);
    accepted.push(`${text}\n      declared: ${declared[i].reason}`);
  } else if (majorBump) {
    accepted.push(`${text}\n      accepted by the major version bump ${baseVersion} → ${headVersion}`);
  } else {
    unaccepted.push(text);
  }
}

console.log(
  `check_breaking: ${relative(root, headPath)} (${headVersion}) vs ${relative(root, basePath)} (${baseVersion}); ` +
    `${findings.length} breaking change(s): ${accepted.length} accepted, ${unaccepted.length} not declared` +
    (useOptic ? "" : " [optic skipped]"),
);
for (const w of opticWarnings) console.log(`  warning (optic): ${w}`);
for (const a of accepted) console.log(`  accepted: ${a}`);
declared.forEach((d, i) => {
  if (!used.has(i)) console.log(`  note: declaration ${JSON.stringify(d.match)} matches no current change (remove it?)`);
});
if (unaccepted.length) {
  console.log("Undeclared breaking changes:");
  for (const u of unaccepted) console.log(`  - ${u}`);
  console.log(
    "Declare each intended one in openapi/breaking-changes.json ({ match, reason }), or release a new major " +
      "version (see openapi/README.md).",
  );
  process.exit(1);
}
