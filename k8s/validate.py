"""Validates rendered manifests offline, for `just k8s-check` (k8s/check.sh).

Every object of a core Kubernetes kind is validated strictly (unknown fields are errors) against
the JSON schemas kubernetes-validate bundles, for the Kubernetes version given. The custom
resources below are not in those schemas (their CRDs ship with KEDA and the Prometheus
Operator), so they get a hand-written schema of the fields arflow sets instead of being skipped
silently: the required fields and their types, with unknown top-level spec fields refused. Any
other kind is an error, so a new kind cannot slip through unvalidated.
"""
import argparse
import sys

import jsonschema
import kubernetes_validate
import yaml

STR = {"type": "string", "minLength": 1}
INT = {"type": "integer", "minimum": 0}
NAMED = {"type": "object", "required": ["name"], "properties": {"name": STR}}

CUSTOM = {
    # KEDA 2.x ScaledObject (keda.sh/v1alpha1), trigger nats-jetstream.
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": NAMED,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": STR, "kind": STR, "apiVersion": STR},
                        "additionalProperties": False,
                    },
                    "minReplicaCount": INT,
                    "maxReplicaCount": INT,
                    "pollingInterval": INT,
                    "cooldownPeriod": INT,
                    "advanced": {"type": "object"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": {"const": "nats-jetstream"},
                                "metadata": {
                                    "type": "object",
                                    "required": ["natsServerMonitoringEndpoint", "account", "stream", "consumer",
                                                 "lagThreshold"],
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    # Prometheus Operator PrometheusRule (monitoring.coreos.com/v1): deploy/observability/alerts.yaml.
    # Every alert has its expression, a `for`, a severity and the annotations an operator reads.
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": NAMED,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["groups"],
                "properties": {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                            "properties": {
                                "name": STR,
                                "interval": STR,
                                "rules": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["alert", "expr", "for", "labels", "annotations"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "alert": STR,
                                            "expr": STR,
                                            "for": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
                                            "labels": {
                                                "type": "object",
                                                "required": ["severity"],
                                                "properties": {"severity": {"enum": ["critical", "warning", "info"]}},
                                                "additionalProperties": {"type": "string"},
                                            },
                                            "annotations": {
                                                "type": "object",
                                                "required": ["summary", "description", "runbook_url"],
                                                "additionalProperties": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    # Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1).
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": NAMED,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": {"type": "object", "required": ["matchLabels"]},
                    "namespaceSelector": {"type": "object"},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port"],
                            "properties": {"port": STR, "path": STR, "interval": STR, "scheme": STR},
                            "additionalProperties": False,
                        },
                    },
                },
            },
        },
    },
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    failures = 0
    for path in args.files:
        core = custom = 0
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            api, kind = doc.get("apiVersion"), doc.get("kind")
            name = f"{kind}/{doc.get('metadata', {}).get('name')}"
            if (api, kind) in CUSTOM:
                try:
                    jsonschema.validate(doc, CUSTOM[(api, kind)])
                    custom += 1
                except jsonschema.ValidationError as e:
                    failures += 1
                    print(f"FAIL {path} {name}: {e.message} at {list(e.absolute_path)}")
                continue
            try:
                kubernetes_validate.validate(doc, args.kubernetes_version, strict=True)
                core += 1
            except kubernetes_validate.SchemaNotFoundError:
                failures += 1
                print(f"FAIL {path} {name}: no schema for {api} {kind} (add one to validate.py's CUSTOM)")
            except kubernetes_validate.ValidationError as e:
                failures += 1
                print(f"FAIL {path} {name}: {e.message} at {list(e.path)}")
        print(f"validated {path}: {core} objects against Kubernetes {args.kubernetes_version} (strict), "
              f"{custom} custom resources against validate.py's schemas")
    if failures:
        print(f"{failures} invalid objects")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
