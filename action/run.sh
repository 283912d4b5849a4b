#!/usr/bin/env bash
# The steps of the composite action (action.yml), kept here so that they can be run, and tested, as a runner
# runs them: inputs as INPUT_* environment variables, GITHUB_ACTION_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY.
#
#   run.sh install   make the venv and install the plugin (this checkout, or INPUT_PLUGIN_VERSION)
#   run.sh gate      run the gate; write the outputs; exit as the gate exits
#                    (INPUT_MODE=check: `validate` and `check --rev HEAD` instead, no AWS: for pull requests)
#
# Inputs are only ever passed as arguments, never evaluated: a manifest path or pytest argument can hold any text.
set -euo pipefail

action_dir="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}"
# Where the plugin's venv lives: the runner's per-job temporary directory, so nothing lands in the workspace.
venv="${PROTON_SYNC_VENV:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/pytest-proton-sync-venv}"

install() {
  local python="${INPUT_PYTHON:-python3}"
  local requirement="${INPUT_PLUGIN_VERSION:-}"
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "::error title=proton-sync: no Python::input python is '$python', which is not on PATH; use actions/setup-python or give a path"
    return 2
  fi
  "$python" -m venv "$venv"
  if [ -z "$requirement" ]; then
    requirement="$action_dir"   # the action's own checkout: the ref in `uses:` pins the plugin
  fi
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"; then
    echo "::error title=proton-sync: install failed::pip could not install '$requirement' (see the lines above)"
    return 2
  fi
  "$venv/bin/pytest-proton-sync" --version
}

gate() {
  local junit="${INPUT_JUNIT_PATH:-proton-sync.xml}"
  local wait="${INPUT_WAIT:-0}"
  local arguments=() manifest line
  if [ ! -x "$venv/bin/python" ]; then
    echo "::error title=proton-sync: not installed::no venv at $venv: run 'run.sh install' first"
    return 2
  fi
  # One manifest per line of the input; blank lines are skipped.
  while IFS= read -r line || [ -n "$line" ]; do
    manifest="$(printf '%s' "$line" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')"
    [ -n "$manifest" ] && arguments+=(--proton-manifest "$manifest")
  done <<< "${INPUT_MANIFEST:-proton-sync.yaml}"
  if [ "${INPUT_MODE:-gate}" = check ]; then
    local manifests=() code=0
    local index
    for ((index = 1; index < ${#arguments[@]}; index += 2)); do manifests+=("${arguments[index]}"); done
    "$venv/bin/pytest-proton-sync" validate "${manifests[@]}" || code=$?
    if [ "$code" -eq 0 ]; then "$venv/bin/pytest-proton-sync" check "${manifests[@]}" --rev HEAD || code=$?; fi
    [ -n "${GITHUB_OUTPUT:-}" ] && printf 'junit-path=\nexit-code=%s\n' "$code" >> "$GITHUB_OUTPUT"
    return "$code"
  elif [ "${INPUT_MODE:-gate}" != gate ]; then
    echo "::error title=proton-sync: bad input::input mode is '${INPUT_MODE}'; allowed: gate, check"
    return 2
  fi
  arguments+=(--proton-wait "$wait" "--junitxml=$junit")
  # The extra arguments, split as a shell splits words (shlex), but never expanded or executed.
  if [ -n "${INPUT_PYTEST_ARGS:-}" ]; then
    local split='import shlex, sys; sys.stdout.write("".join(word + "\0" for word in shlex.split(sys.argv[1])))'
    local problem words=()
    if ! problem="$("$venv/bin/python" -c "$split" "$INPUT_PYTEST_ARGS" 2>&1 >/dev/null)"; then
      echo "::error title=proton-sync: bad input::input pytest-args cannot be split into words: ${problem##*: }"
      return 2
    fi
    mapfile -d '' -t words < <("$venv/bin/python" -c "$split" "$INPUT_PYTEST_ARGS")
    arguments+=("${words[@]}")
  fi
  local code=0
  # Under GITHUB_ACTIONS=true the plugin itself annotates and appends the step summary.
  "$venv/bin/python" -m pytest "${arguments[@]}" || code=$?
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    {
      echo "junit-path=$junit"
      echo "exit-code=$code"
    } >> "$GITHUB_OUTPUT"
  fi
  if [ "$code" -ge 3 ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    # 3 internal error, 4 usage error, 5 nothing collected: the plugin wrote no summary, so say it here.
    printf '### proton-sync: the gate did not run (exit %s)\n\nSee the step log: %s\n' "$code" \
      "a usage error (exit 4) names the option or path to fix" >> "$GITHUB_STEP_SUMMARY"
  fi
  return "$code"
}

case "${1:-}" in
  install) install ;;
  gate) gate ;;
  *) echo "usage: $0 install|gate" >&2; exit 2 ;;
esac
