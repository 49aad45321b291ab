"""Checks that the manifests in Deploy/kubernetes agree with each other and with Baton, beyond what
their schemas say (kubernetes-validate checks those; `make check-deploy` runs both):
  - kustomization.yaml lists every manifest of the folder, and nothing else;
  - the ConfigMap's baton.json is JSON whose http.listen is 0.0.0.0 on the port that the container,
    the probes, the Service, its prometheus.io/port annotation and the NetworkPolicy use;
  - state_dir is the mount path of a volumeClaimTemplate (not an emptyDir: see statefulset.yaml);
  - terminationGracePeriodSeconds exceeds Baton's shutdown grace (CoordinatorOptions.swift) by 10 s;
  - the probes ask /livez (startup, liveness) and /readyz (readiness);
  - no Secret is shipped, and the keyring and the Redis password come from secretKeyRef.
Writes the ConfigMap's baton.json to the path given, for `baton config check`.
Usage: python check-kubernetes.py OUTPUT.json (needs PyYAML: the check-deploy virtual environment)."""

import json
import pathlib
import re
import sys

import yaml

DEPLOY = pathlib.Path(__file__).resolve().parent
FOLDER = DEPLOY / "kubernetes"
GRACE_SOURCE = DEPLOY.parent / "Sources/BatonCoordinator/CoordinatorOptions.swift"
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def only(kind, documents):
    found = [document for document in documents if document.get("kind") == kind]
    if len(found) != 1:
        sys.exit(f"check-kubernetes: expected one {kind} in {FOLDER}, found {len(found)}")
    return found[0]


manifests = sorted(path.name for path in FOLDER.glob("*.yaml") if path.name != "kustomization.yaml")
kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())
listed = kustomization.get("resources", [])
check(sorted(listed) == manifests, f"kustomization.yaml lists {sorted(listed)}, the folder has {manifests}")
documents = [document for name in manifests for document in yaml.safe_load_all((FOLDER / name).read_text())]
check(not any(document.get("kind") == "Secret" for document in documents),
      "a Secret is shipped: ship references only (the README tells how to create them)")

config_map = only("ConfigMap", documents)
statefulset = only("StatefulSet", documents)
service = only("Service", documents)
policy = only("NetworkPolicy", documents)
configuration = json.loads(config_map["data"]["baton.json"])
pod = statefulset["spec"]["template"]["spec"]
container = pod["containers"][0]

host, _, port = configuration.get("http", {}).get("listen", "").rpartition(":")
check(host == "0.0.0.0", f"http.listen is {host}:{port}: the probes and Prometheus need 0.0.0.0")
port = int(port) if port.isdigit() else None
container_ports = {entry["name"]: entry["containerPort"] for entry in container.get("ports", [])}
check(container_ports.get("http") == port, f"the container port 'http' {container_ports} is not http.listen's {port}")
for probe, path in [("startupProbe", "/livez"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")]:
    get = container.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path and get.get("port") in ("http", port), f"{probe} is not GET {path} on 'http': {get}")
check([entry.get("targetPort") for entry in service["spec"]["ports"]] in (["http"], [port]),
      f"the Service does not target the port 'http': {service['spec']['ports']}")
annotations = service["metadata"].get("annotations", {})
check(annotations.get("prometheus.io/port") == str(port) and annotations.get("prometheus.io/path") == "/metrics"
      and annotations.get("prometheus.io/scrape") == "true", f"the Service's scrape annotations are wrong: {annotations}")
ingress_ports = [entry.get("port") for rule in policy["spec"].get("ingress", []) for entry in rule.get("ports", [])]
check(ingress_ports == [port], f"the NetworkPolicy admits the ports {ingress_ports}, not only {port}")

claims = {template["metadata"]["name"] for template in statefulset["spec"].get("volumeClaimTemplates", [])}
mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
check(mounts.get(configuration.get("state_dir")) in claims,
      f"state_dir {configuration.get('state_dir')} is not on a volumeClaimTemplate ({claims}); mounts: {mounts}")
arguments = container.get("args", [])
config_path = arguments[arguments.index("--config") + 1] if "--config" in arguments else ""
check(str(pathlib.PurePath(config_path).parent) in mounts, f"--config {config_path} is not in a mounted folder")
variables = {entry["name"]: entry.get("value") for entry in container.get("env", [])}
check(variables.get("BATON_CONFIG") == config_path, f"BATON_CONFIG is not --config's {config_path}")

grace = re.search(r"shutdownGrace: Duration = \.seconds\((\d+)\)", GRACE_SOURCE.read_text())
check(grace is not None, f"{GRACE_SOURCE}: no `shutdownGrace: Duration = .seconds(N)` default found")
if grace:
    termination = pod.get("terminationGracePeriodSeconds", 30)
    check(termination >= int(grace.group(1)) + 10,
          f"terminationGracePeriodSeconds {termination} leaves under 10 s past the shutdown grace {grace.group(1)} s")

references = {entry["name"]: entry.get("valueFrom", {}) for entry in container.get("env", [])}
for variable in ("BATON_ENCRYPTION_KEYS", "BATON_REDIS_PASSWORD"):
    check("secretKeyRef" in references.get(variable, {}), f"{variable} does not come from a secretKeyRef")

if problems:
    sys.exit("check-kubernetes: " + "\ncheck-kubernetes: ".join(problems))
pathlib.Path(sys.argv[1]).write_text(config_map["data"]["baton.json"])
print(f"Deploy/kubernetes: {len(manifests)} manifests agree with each other; the ConfigMap's baton.json is in {sys.argv[1]}")
