#!/bin/sh
# The image's entrypoint: `nps ARGS...`. The scheduler's `nps serve` brings the schema up first; replicas
# (`serve --no-scheduler`) and `worker`s do not, so several containers starting at once run one upgrade, and
# they refuse to start on an old schema until it is done (restart them, or let the orchestrator).
set -eu
case " $* " in
  *" --no-scheduler "*) ;;
  *" serve "*) nps db upgrade ;;
esac
exec nps "$@"
