#!/usr/bin/env bash
# `just k8s-check`: renders every overlay with `kubectl kustomize`, validates each object
# against the Kubernetes JSON schemas offline (kubernetes-validate, K8S_VERSION), runs checkov
# with k8s/.checkov.yaml, then the completeness test (tests/tests/k8s.rs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.tools/venv"
req="$root/k8s/requirements.txt"
stamp="$venv/.k8s-requirements"
K8S_VERSION="${K8S_VERSION:-1.32.0}"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi
command -v kubectl >/dev/null || { echo "k8s-check: kubectl is required (https://kubernetes.io/docs/tasks/tools/)" >&2; exit 1; }
out="$root/.tools/k8s-rendered"  # checkov below scans it by its relative path
rm -rf "$out"; mkdir -p "$out"
for overlay in k8s/overlays/*/; do
  name="$(basename "$overlay")"
  mkdir -p "$out/$name"
  kubectl kustomize "$overlay" >"$out/$name/all.yaml"
  echo "rendered $overlay -> $out/$name/all.yaml ($(grep -c '^kind:' "$out/$name/all.yaml") objects)"
done
"$venv/bin/python" k8s/validate.py --kubernetes-version "$K8S_VERSION" "$out"/*/all.yaml
echo "checkov (k8s/.checkov.yaml; skipped checks are justified there):"
# No policy downloads, no upload, no update check: the scan works offline. A failed check exits non-zero.
# The path is relative: checkov 3 scans nothing under an absolute path through a dot-directory,
# so an empty scan is refused below as well.
report="$(cd "$root" && BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$venv/bin/checkov" --config-file k8s/.checkov.yaml \
  -d .tools/k8s-rendered -o cli --skip-results-upload)" || { echo "$report"; exit 1; }
echo "$report" | grep -v '^$'
echo "$report" | grep -Eq 'Passed checks: [1-9][0-9]*, Failed checks: 0,' || { echo "checkov scanned nothing" >&2; exit 1; }
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked -p arflow-tests --test k8s
else
  cargo test --locked -p arflow-tests --test k8s
fi
