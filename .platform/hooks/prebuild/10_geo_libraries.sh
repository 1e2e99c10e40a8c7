#!/usr/bin/env bash
# GeoDjango needs GDAL and GEOS, which Amazon Linux 2023 does not package. The PyPI
# wheels of pyogrio and shapely carry self-contained builds of both (all their
# dependencies inside, linked by $ORIGIN); this copies those libraries to
# /opt/ze-geo/lib, where GDAL_LIBRARY_PATH and GEOS_LIBRARY_PATH point, and PROJ's
# and GDAL's data files to /opt/ze-geo/share (PROJ_DATA, GDAL_DATA; all four are set by
# deploy/ze_infra/compute.py). Runs before the build, so migrations can import GeoDjango.
# The two wheels are pinned with the sha256 of every file PyPI has for them
# (deploy/eb/geo-wheels.txt, from `make lock`): pip refuses a download that matches none.
# Idempotent: an instance that already has the libraries of this lock skips it.
set -euo pipefail

WHEELS=deploy/eb/geo-wheels.txt
ROOT=${ZE_GEO_DIR:-/opt/ze-geo}  # another folder only in deploy/tests/test_supply_chain.py
LIB=$ROOT/lib
STAMP="$ROOT/.lock-$(sha256sum "$WHEELS" | cut -c1-16)"

[ -f "$STAMP" ] && exit 0

PY=$(command -v python3.11 || command -v python3)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
  --platform "manylinux_2_28_$(uname -m)" --python-version 3.11 \
  -d "$WORK" -r "$WHEELS"
"$PY" - "$WORK" <<'PYEOF'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
for wheel in work.glob("*.whl"):
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.endswith("/"):
                continue
            if ".libs/" in name:
                target = work / "lib" / pathlib.Path(name).name
            elif name.startswith(("pyogrio/proj_data/", "pyogrio/gdal_data/")):
                kind = "proj" if "proj_data" in name else "gdal"
                target = work / "share" / kind / pathlib.Path(name).name
            else:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
PYEOF
rm -rf "$ROOT"
mkdir -p "$ROOT"
cp -r "$WORK"/lib "$WORK"/share "$ROOT"/
# Stable names in the same directory, so $ORIGIN still finds the hashed dependencies.
ln -sf "$(cd "$LIB" && ls libgdal-*.so.*)" "$LIB/libgdal.so"
ln -sf "$(cd "$LIB" && ls libgeos_c-*.so.*)" "$LIB/libgeos_c.so"
touch "$STAMP"
