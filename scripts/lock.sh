#!/usr/bin/env bash
# Compiles the human-edited requirements/*.in (direct dependencies, exact pins) into the
# locked requirements/*.txt: every transitive dependency pinned, with the sha256 of every
# file PyPI serves for it, so `pip install --require-hashes` refuses anything else.
#
#   make lock                 after editing an .in file (keeps every other pin as it is)
#   make lock UPGRADE=1       move every transitive dependency to its newest allowed version
#
# uv resolves for Python 3.11 on any platform (--universal), so the same lock installs on
# x86_64 here and on the Graviton (aarch64) instances of Elastic Beanstalk. It reads the
# existing lock as its preferences: without UPGRADE, a pin changes only when an .in asks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh >/dev/null

args=(--quiet --universal --python-version 3.11 --generate-hashes
      --index-url https://pypi.org/simple --custom-compile-command "make lock")
[ "${UPGRADE:-0}" = "1" ] && args+=(--upgrade)
compile() { .venv-tools/bin/uv pip compile "${args[@]}" "$@"; }

compile -o requirements/pip.txt requirements/pip.in
compile -o requirements/base.txt requirements/base.in
# The same versions as base.txt for everything production also runs.
compile -c requirements/base.txt -o requirements/local.txt requirements/local.in
compile -c requirements/base.txt -o requirements/production.txt requirements/production.in
compile -c requirements/local.txt -o requirements/bench.txt requirements/bench.in
compile -o requirements/deploy.txt requirements/deploy.in
compile -o requirements/tools.txt requirements/tools.in
compile -o requirements/warehouse.txt requirements/warehouse.in
compile -o deploy/requirements-checkov.txt deploy/requirements-checkov.in
# Downloaded by the instances' prebuild hook for their libraries only: no dependencies.
compile --no-deps -o deploy/eb/geo-wheels.txt deploy/eb/geo-wheels.in
git status --short -- requirements deploy/requirements-checkov.txt deploy/eb/geo-wheels.txt
