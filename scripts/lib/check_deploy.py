"""Checks of deploy/k8s/*.yaml and compose.yaml that no JSON schema can express.

    python check_deploy.py ROOT COMPOSE_SCHEMA      # exit 1 and one line per finding
    python check_deploy.py --self-test ROOT COMPOSE_SCHEMA

Rules (each one a function below, named after what it guarantees):
- probes: startup and liveness on /health/live, readiness on /health/ready, on the named
  container port;
- shutdown: preStop sleep == SHUTDOWN_DRAIN_DELAY, and terminationGracePeriodSeconds > preStop +
  SHUTDOWN_DRAIN_DELAY + SHUTDOWN_TIMEOUT (from the ConfigMap); compose's stop_grace_period >
  drain delay + timeout;
- hardening: runAsNonRoot, a non-zero uid, readOnlyRootFilesystem, no privilege escalation,
  every capability dropped, resources requested and memory limited; compose: non-root user,
  read_only, cap_drop ALL;
- wiring: Service, PodDisruptionBudget and HPA select the Deployment's pods, the HPA scales the
  Deployment, the kustomization lists every manifest;
- configuration: every variable set in the ConfigMap, the Deployment or compose is one the
  README's configuration table documents (a typo would be silently ignored by Herald);
- secrets: no Secret object is committed, DATABASE_URL/JWT_SECRET/REDIS_URL come from a
  secretKeyRef, compose takes secrets from the environment (`${VAR:?...}`), never literally;
- compose: valid against the compose-spec JSON schema; healthchecks on every service; Herald
  waits for healthy PostgreSQL and Redis.

--self-test breaks each rule once in a copy of the files and fails unless the checks notice,
so a check that can no longer fail is caught too.
"""

import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml

SECRET_VARIABLES = {"DATABASE_URL", "JWT_SECRET", "REDIS_URL"}


def duration_seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", str(text).strip())
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    value, unit = int(match[1]), match[2]
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def load(root):
    k8s = {}
    for path in sorted((root / "deploy/k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                k8s.setdefault(doc["kind"], []).append((path.name, doc))
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    readme = (root / "README.md").read_text()
    return {"k8s": k8s, "compose": compose, "readme": readme}


def documented_variables(readme):
    """Backticked upper-case names in the README's configuration table rows."""
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def one(files, kind):
    items = files["k8s"].get(kind, [])
    if len(items) != 1:
        raise AssertionError(f"expected one {kind}, found {len(items)}")
    return items[0][1]


def herald_container(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]


def config_data(files):
    return one(files, "ConfigMap")["data"]


def check_probes(files):
    findings = []
    container = herald_container(one(files, "Deployment"))
    ports = {p.get("name") for p in container.get("ports", [])}
    want = {"startupProbe": "/health/live", "livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
    for probe, path in want.items():
        got = container.get(probe, {}).get("httpGet", {})
        if got.get("path") != path:
            findings.append(f"deployment: {probe} must GET {path}, has {got.get('path')!r}")
        if got.get("port") not in ports:
            findings.append(f"deployment: {probe} port {got.get('port')!r} is not a named container port")
    return findings


def check_shutdown(files):
    findings = []
    deployment = one(files, "Deployment")
    data = config_data(files)
    drain = duration_seconds(data.get("SHUTDOWN_DRAIN_DELAY", "1s"))
    timeout = duration_seconds(data.get("SHUTDOWN_TIMEOUT", "30s"))
    pre_stop = herald_container(deployment).get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
    if pre_stop != drain:
        findings.append(f"deployment: preStop sleep {pre_stop!r} s must equal SHUTDOWN_DRAIN_DELAY ({drain} s)")
    grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    if not grace > (pre_stop or 0) + drain + timeout:
        findings.append(
            f"deployment: terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} + "
            f"SHUTDOWN_DRAIN_DELAY {drain} + SHUTDOWN_TIMEOUT {timeout}"
        )
    herald = files["compose"]["services"]["herald"]
    env = herald.get("environment", {})
    c_drain = duration_seconds(env.get("SHUTDOWN_DRAIN_DELAY", "1s"))
    c_timeout = duration_seconds(env.get("SHUTDOWN_TIMEOUT", "30s"))
    c_grace = duration_seconds(herald.get("stop_grace_period", "10s"))
    if not c_grace > c_drain + c_timeout:
        findings.append(f"compose: stop_grace_period {c_grace} s must exceed drain {c_drain} + timeout {c_timeout}")
    return findings


def check_hardening(files):
    findings = []
    for kind in ("Deployment", "Job"):
        for name, doc in files["k8s"].get(kind, []):
            pod = doc["spec"]["template"]["spec"]
            pod_sc = pod.get("securityContext", {})
            if pod_sc.get("runAsNonRoot") is not True:
                findings.append(f"{name}: pod securityContext.runAsNonRoot must be true")
            if pod_sc.get("runAsUser", 0) == 0:
                findings.append(f"{name}: pod securityContext.runAsUser must be a non-zero uid")
            if pod.get("automountServiceAccountToken") is not False:
                findings.append(f"{name}: automountServiceAccountToken must be false (Herald never calls the API server)")
            for container in pod["containers"]:
                sc = container.get("securityContext", {})
                cname = f"{name} container {container['name']}"
                if sc.get("readOnlyRootFilesystem") is not True:
                    findings.append(f"{cname}: readOnlyRootFilesystem must be true")
                if sc.get("allowPrivilegeEscalation") is not False:
                    findings.append(f"{cname}: allowPrivilegeEscalation must be false")
                if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                    findings.append(f"{cname}: capabilities.drop must include ALL")
                resources = container.get("resources", {})
                for need in ("cpu", "memory"):
                    if need not in resources.get("requests", {}):
                        findings.append(f"{cname}: resources.requests.{need} missing")
                if "memory" not in resources.get("limits", {}):
                    findings.append(f"{cname}: resources.limits.memory missing")
                image = container.get("image", "")
                if ":" not in image or image.endswith(":latest"):
                    findings.append(f"{cname}: image {image!r} needs a pinned tag")
    herald = files["compose"]["services"]["herald"]
    user = str(herald.get("user", "0")).split(":")[0]
    if user in ("0", "root"):
        findings.append("compose: herald must run as a non-root user")
    if herald.get("read_only") is not True:
        findings.append("compose: herald must have read_only: true")
    if "ALL" not in herald.get("cap_drop", []):
        findings.append("compose: herald must cap_drop ALL")
    return findings


def check_wiring(files, root):
    findings = []
    deployment = one(files, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    if deployment["spec"]["selector"]["matchLabels"].items() - pod_labels.items():
        findings.append("deployment: selector does not match its pod labels")

    def selects(selector):
        return selector and not (selector.items() - pod_labels.items())

    service = one(files, "Service")
    if not selects(service["spec"].get("selector")):
        findings.append("service: selector does not select the Deployment's pods")
    container_ports = {p.get("name") for p in herald_container(deployment)["ports"]}
    for port in service["spec"]["ports"]:
        if port.get("targetPort") not in container_ports:
            findings.append(f"service: targetPort {port.get('targetPort')!r} is not a named container port")
    pdb = one(files, "PodDisruptionBudget")
    if not selects(pdb["spec"].get("selector", {}).get("matchLabels")):
        findings.append("pdb: selector does not select the Deployment's pods")
    hpa = one(files, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    if (target.get("kind"), target.get("name")) != ("Deployment", deployment["metadata"]["name"]):
        findings.append("hpa: scaleTargetRef does not name the Deployment")
    if hpa["spec"].get("minReplicas", 1) < 2:
        findings.append("hpa: minReplicas < 2 leaves a single pod (the PDB then blocks every drain)")
    kustomization = root / "deploy/k8s/kustomization.yaml"
    if kustomization.exists():
        listed = set(yaml.safe_load(kustomization.read_text()).get("resources", []))
        present = {p.name for p in (root / "deploy/k8s").glob("*.yaml")} - {"kustomization.yaml"}
        if listed != present:
            findings.append(f"kustomization: resources {sorted(listed)} differ from the files {sorted(present)}")
    return findings


def check_configuration(files):
    findings = []
    known = documented_variables(files["readme"])
    if len(known) < 20:
        return [f"README: found only {len(known)} variables in the configuration table"]
    set_here = [("configmap", k) for k in config_data(files)]
    for kind in ("Deployment", "Job"):
        for name, doc in files["k8s"].get(kind, []):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                set_here += [(name, e["name"]) for e in container.get("env", [])]
    set_here += [("compose", k) for k in files["compose"]["services"]["herald"].get("environment", {})]
    for where, name in set_here:
        if name not in known:
            findings.append(f"{where}: {name} is not a variable the README documents")
    return findings


def check_secrets(files):
    findings = []
    if files["k8s"].get("Secret"):
        findings.append("deploy/k8s: a Secret object is committed; reference one created out of band")
    for key in config_data(files):
        if key in SECRET_VARIABLES:
            findings.append(f"configmap: {key} is a secret and belongs in the Secret")
    for kind in ("Deployment", "Job"):
        for name, doc in files["k8s"].get(kind, []):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for env in container.get("env", []):
                    if env["name"] in SECRET_VARIABLES and "secretKeyRef" not in env.get("valueFrom", {}):
                        findings.append(f"{name}: {env['name']} must come from a secretKeyRef")
    for service, spec in files["compose"]["services"].items():
        env = spec.get("environment", {})
        for key, value in (env.items() if isinstance(env, dict) else []):
            if key in SECRET_VARIABLES | {"POSTGRES_PASSWORD"} and key != "REDIS_URL":
                if not re.search(r"\$\{[A-Z_]+:\?", str(value)):
                    findings.append(f"compose {service}: {key} must come from the environment (${{VAR:?...}}), not a literal")
    return findings


def check_compose(files, schema):
    findings = []
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)(schema)
    for error in validator.iter_errors(files["compose"]):
        findings.append(f"compose: {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}")
    services = files["compose"].get("services", {})
    for name in ("herald", "postgres", "redis"):
        if name not in services:
            findings.append(f"compose: no {name} service")
        elif "healthcheck" not in services[name]:
            findings.append(f"compose: {name} has no healthcheck")
    depends = services.get("herald", {}).get("depends_on", {})
    for name in ("postgres", "redis"):
        if not isinstance(depends, dict) or depends.get(name, {}).get("condition") != "service_healthy":
            findings.append(f"compose: herald must wait for {name} to be healthy")
    return findings


def run_checks(files, root, schema):
    return (
        check_probes(files)
        + check_shutdown(files)
        + check_hardening(files)
        + check_wiring(files, root)
        + check_configuration(files)
        + check_secrets(files)
        + check_compose(files, schema)
    )


def self_test(files, root, schema):
    """Each mutation must produce at least one finding."""

    def deployment_container(f):
        return herald_container(one(f, "Deployment"))

    def mutate(description, change):
        broken = copy.deepcopy(files)
        change(broken)
        return description, run_checks(broken, root, schema)

    cases = [
        mutate("readiness on /health/live", lambda f: deployment_container(f)["readinessProbe"]["httpGet"].update(path="/health/live")),
        mutate("preStop shorter than the drain delay", lambda f: deployment_container(f)["lifecycle"]["preStop"]["sleep"].update(seconds=1)),
        mutate("grace period too short", lambda f: one(f, "Deployment")["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=20)),
        mutate("writable root filesystem", lambda f: deployment_container(f)["securityContext"].update(readOnlyRootFilesystem=False)),
        mutate("capabilities kept", lambda f: deployment_container(f)["securityContext"]["capabilities"].update(drop=[])),
        mutate("runs as root", lambda f: one(f, "Deployment")["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0)),
        mutate("service selects nothing", lambda f: one(f, "Service")["spec"].update(selector={"app": "other"})),
        mutate("misspelt variable", lambda f: one(f, "ConfigMap")["data"].update(SHUTDOWN_DRAIN_DELAYS="5s")),
        mutate("literal secret", lambda f: deployment_container(f)["env"].append({"name": "JWT_SECRET", "value": "x" * 40})),
        mutate("secret in the ConfigMap", lambda f: one(f, "ConfigMap")["data"].update(JWT_SECRET="x" * 40)),
        mutate("compose: unknown key", lambda f: f["compose"]["services"]["herald"].update(read_onyl=True)),
        mutate("compose: literal password", lambda f: f["compose"]["services"]["postgres"]["environment"].update(POSTGRES_PASSWORD="herald")),
        mutate("compose: writable root", lambda f: f["compose"]["services"]["herald"].update(read_only=False)),
        mutate("compose: no healthcheck", lambda f: f["compose"]["services"]["redis"].pop("healthcheck")),
    ]
    missed = [description for description, findings in cases if not findings]
    for description, findings in cases:
        print(f"  self-test: {description}: {'caught' if findings else 'MISSED'} ({findings[0] if findings else '-'})")
    return missed


def main(argv):
    self_testing = argv[:1] == ["--self-test"]
    if self_testing:
        argv = argv[1:]
    root, schema_path = Path(argv[0]), Path(argv[1])
    schema = json.loads(schema_path.read_text())
    files = load(root)
    findings = run_checks(files, root, schema)
    for finding in findings:
        print(f"  {finding}")
    if findings:
        return 1
    print(f"  deployment rules: ok ({len(documented_variables(files['readme']))} documented variables known)")
    if self_testing:
        missed = self_test(files, root, schema)
        if missed:
            print(f"  the checks missed: {', '.join(missed)}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
