#!/usr/bin/env bash
# .venv-tools/: uv (make lock) and pip-audit (make audit), installed from their own lock
# with hashes required. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv-tools/.installed
if [ ! -f $stamp ] || [ requirements/tools.txt -nt $stamp ] || [ requirements/pip.txt -nt $stamp ]; then
  [ -x .venv-tools/bin/python ] || python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/pip.txt
  .venv-tools/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/tools.txt
  touch $stamp
fi
