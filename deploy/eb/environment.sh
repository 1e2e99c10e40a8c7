# Sourced by the platform hooks: the environment properties (and the secrets EB fetched
# for them) when the hook was not started with them, and the app's virtualenv.
if [ -z "${ZE_PROCESS:-}" ] && [ -x /opt/elasticbeanstalk/bin/get-config ]; then
  eval "$(/opt/elasticbeanstalk/bin/get-config environment | python3 -c '
import json, shlex, sys
for key, value in json.load(sys.stdin).items():
    print(f"export {key}={shlex.quote(str(value))}")
')"
fi
for activate in /var/app/venv/*/bin/activate; do
  # shellcheck disable=SC1090
  [ -f "$activate" ] && . "$activate" && break
done
