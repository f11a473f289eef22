#!/usr/bin/env bash
# Runs `elasticproxy check` on every shipped example and every ```yaml block of the README and
# docs/, as a new user would. Usage: check-examples.sh <elasticproxy binary> <dir>...
# A <dir> holds examples (*.yaml: checked as they are) and/or Markdown (README.md, docs/*.md).
# Markdown blocks are completed the same way every time, never guessed:
#   - a block starting with `sources:` is one backend's sources: it becomes backend "web";
#   - no top-level `haproxy:`: `haproxy: {sockets: [/run/haproxy/admin.sock]}` is added;
#   - no top-level `backends:`: a static backend "web" is added.
# Schematic blocks that are not YAML are fenced as ```text in the docs, not ```yaml. Blocks that
# start with `apiVersion:` are Kubernetes objects (RBAC, a kubeconfig), not ElasticProxy's config:
# they are listed as skipped.
# Exit 0 when everything passes; otherwise names each failing file/block with check's output.
set -u
bin=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
checked=0

check_one() {  # <label> <file>
  local out
  checked=$((checked + 1))
  if out=$("$bin" check -c "$2" 2>&1); then
    echo "ok   $1"
  else
    echo "FAIL $1"
    echo "$out" | sed 's/^/     /'
    sed 's/^/     | /' "$2"
    failed=$((failed + 1))
  fi
}

complete_block() {  # <raw block file> <out file>
  local raw=$1 out=$2
  : >"$out"
  if ! grep -q '^haproxy:' "$raw"; then
    echo 'haproxy: {sockets: [/run/haproxy/admin.sock]}' >>"$out"
  fi
  if head -n1 "$raw" | grep -q '^sources:'; then
    printf 'backends:\n  - name: web\n' >>"$out"
    sed 's/^/    /' "$raw" >>"$out"
  else
    cat "$raw" >>"$out"
    if ! grep -q '^backends:' "$raw"; then
      printf 'backends:\n  - name: web\n    sources:\n      - static: {servers: ["127.0.0.1:8080"]}\n' >>"$out"
    fi
  fi
}

for dir in "$@"; do
  for f in "$dir"/*.yaml "$dir"/*.yml; do
    [ -f "$f" ] && check_one "$f" "$f"
  done
  for md in "$dir"/*.md; do
    [ -f "$md" ] || continue
    # Split the ```yaml blocks into numbered files (line number of the fence in the name).
    awk -v dir="$tmp" -v base="$(basename "$md")" '
      /^```yaml[[:space:]]*$/ { inb = 1; n = NR; f = dir "/" base "." n ".raw"; printf "" > f; next }
      inb && /^```/ { inb = 0; close(f); next }
      inb { print > f }' "$md"
    for raw in "$tmp/$(basename "$md")".*.raw; do
      [ -f "$raw" ] || continue
      line=${raw%.raw}
      line=${line##*.}
      if head -n1 "$raw" | grep -q '^apiVersion:'; then
        echo "skip $md:$line (a Kubernetes object, not an ElasticProxy config)"
        rm -f "$raw"
        continue
      fi
      complete_block "$raw" "${raw%.raw}.yaml"
      check_one "$md:$line" "${raw%.raw}.yaml"
      rm -f "$raw"
    done
  done
done
echo "$checked checked, $failed failed"
[ "$checked" -gt 0 ] && [ "$failed" -eq 0 ]
