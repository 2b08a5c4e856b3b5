#!/usr/bin/env bash
# oomkill-scale-down: scale a Deployment or StatefulSet down to SCALE_TARGET_REPLICAS.
#
# Usage: remediate.sh [validate|act|verify|all]   (default: all)
# Parameters arrive as environment variables of the same names (TARGET_RESOURCE_KIND,
# TARGET_RESOURCE_NAME, TARGET_RESOURCE_NAMESPACE, SCALE_TARGET_REPLICAS; TARGET_RESOURCE is logged).
# Each phase re-reads the cluster, so the phases can also run as separate Tekton tasks.
set -euo pipefail

readonly PLAYBOOK=oomkill-scale-down
# How long verify waits for the workload to settle, and how often it looks. Constants: nothing
# in the cluster passes environment variables the workflow does not declare.
readonly VERIFY_TIMEOUT_SECONDS=300 POLL_SECONDS=5

log() { printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PLAYBOOK" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

require() {
  local name="$1"
  [[ -n "${!name:-}" ]] || die "parameter $name is required but empty"
}

read_inputs() {
  require TARGET_RESOURCE_KIND
  require TARGET_RESOURCE_NAME
  require TARGET_RESOURCE_NAMESPACE
  SCALE_TARGET_REPLICAS="${SCALE_TARGET_REPLICAS:-1}"

  case "${TARGET_RESOURCE_KIND,,}" in
    deployment) RESOURCE="deployments.apps" ;;
    statefulset) RESOURCE="statefulsets.apps" ;;
    *) die "TARGET_RESOURCE_KIND must be Deployment or StatefulSet, got '$TARGET_RESOURCE_KIND'" ;;
  esac
  [[ "$TARGET_RESOURCE_NAME" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] ||
    die "TARGET_RESOURCE_NAME '$TARGET_RESOURCE_NAME' is not a valid resource name"
  [[ "$TARGET_RESOURCE_NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] ||
    die "TARGET_RESOURCE_NAMESPACE '$TARGET_RESOURCE_NAMESPACE' is not a valid namespace name"
  if ! [[ "$SCALE_TARGET_REPLICAS" =~ ^[0-9]{1,4}$ ]] || ((10#$SCALE_TARGET_REPLICAS > 1000)); then
    die "SCALE_TARGET_REPLICAS must be an integer from 0 to 1000, got '$SCALE_TARGET_REPLICAS'"
  fi
  SCALE_TARGET_REPLICAS=$((10#$SCALE_TARGET_REPLICAS))
  [[ "$VERIFY_TIMEOUT_SECONDS" =~ ^[0-9]+$ ]] || die "VERIFY_TIMEOUT_SECONDS must be an integer"

  TARGET="$RESOURCE/$TARGET_RESOURCE_NAME"
  log "target: $TARGET_RESOURCE_KIND $TARGET_RESOURCE_NAMESPACE/$TARGET_RESOURCE_NAME," \
    "desired replicas: $SCALE_TARGET_REPLICAS (signal target: ${TARGET_RESOURCE:-unset})"
}

k() { kubectl --namespace "$TARGET_RESOURCE_NAMESPACE" "$@"; }

current_replicas() {
  local replicas
  replicas="$(k get "$TARGET" -o 'jsonpath={.spec.replicas}')" ||
    die "$TARGET_RESOURCE_KIND $TARGET_RESOURCE_NAMESPACE/$TARGET_RESOURCE_NAME not found or not readable"
  # An unset .spec.replicas means the API default of 1.
  printf '%s\n' "${replicas:-1}"
}

validate() {
  local current hpas
  current="$(current_replicas)"
  log "validate: $TARGET_RESOURCE_KIND has $current replica(s) in its spec"
  if ((SCALE_TARGET_REPLICAS > current)); then
    die "refusing to scale UP from $current to $SCALE_TARGET_REPLICAS: this playbook only scales down"
  fi
  # An autoscaler would undo a manual scale-down within minutes.
  hpas="$(k get horizontalpodautoscalers.autoscaling -o \
    'jsonpath={range .items[*]}{.metadata.name}{"|"}{.spec.scaleTargetRef.kind}{"|"}{.spec.scaleTargetRef.name}{"\n"}{end}')" ||
    die "cannot list HorizontalPodAutoscalers in $TARGET_RESOURCE_NAMESPACE"
  local name kind ref
  while IFS='|' read -r name kind ref; do
    [[ -n "$name" ]] || continue
    if [[ "${kind,,}" == "${TARGET_RESOURCE_KIND,,}" && "$ref" == "$TARGET_RESOURCE_NAME" ]]; then
      die "HorizontalPodAutoscaler $name scales this workload; change its bounds instead"
    fi
  done <<<"$hpas"
  log "validate: ok"
}

act() {
  local current
  current="$(current_replicas)"
  if ((current == SCALE_TARGET_REPLICAS)); then
    log "act: already at $SCALE_TARGET_REPLICAS replica(s); nothing to change"
    return 0
  fi
  ((SCALE_TARGET_REPLICAS < current)) ||
    die "replicas changed to $current since validation; refusing to scale up"
  # Record the previous count so a human (or a rollback) can restore it.
  k annotate "$TARGET" --overwrite \
    "kubernaut.ai/scaled-down-from=$current" "kubernaut.ai/scaled-down-by=$PLAYBOOK" >/dev/null
  # --current-replicas makes the API refuse the change if someone scaled meanwhile.
  k scale "$TARGET" --current-replicas="$current" --replicas="$SCALE_TARGET_REPLICAS" ||
    die "kubectl scale failed"
  log "act: scaled from $current to $SCALE_TARGET_REPLICAS replica(s)"
}

verify() {
  local deadline=$((SECONDS + VERIFY_TIMEOUT_SECONDS))
  local spec status ready generation observed
  local fields
  while true; do
    fields="$(k get "$TARGET" -o \
      'jsonpath={.spec.replicas}{"|"}{.status.replicas}{"|"}{.status.readyReplicas}{"|"}{.metadata.generation}{"|"}{.status.observedGeneration}')" ||
      die "cannot read $TARGET_RESOURCE_KIND $TARGET_RESOURCE_NAMESPACE/$TARGET_RESOURCE_NAME"
    IFS='|' read -r spec status ready generation observed <<<"$fields"
    # The API omits zero-valued status counters.
    spec="${spec:-1}" status="${status:-0}" ready="${ready:-0}" observed="${observed:-0}"
    if ((spec != SCALE_TARGET_REPLICAS)); then
      die "spec.replicas is $spec, expected $SCALE_TARGET_REPLICAS (changed by someone else?)"
    fi
    if ((observed >= generation && status == SCALE_TARGET_REPLICAS && ready == SCALE_TARGET_REPLICAS)); then
      log "verify: ok, $status replica(s), $ready ready"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      die "not settled after ${VERIFY_TIMEOUT_SECONDS}s: $status replica(s), $ready ready, want $SCALE_TARGET_REPLICAS"
    fi
    log "verify: waiting ($status replica(s), $ready ready, want $SCALE_TARGET_REPLICAS)"
    sleep "$POLL_SECONDS"
  done
}

main() {
  local phase="${1:-all}"
  read_inputs
  case "$phase" in
    validate) validate ;;
    act) act ;;
    verify) verify ;;
    all)
      # Called one by one, not chained with &&, so that errexit stays active inside each.
      validate
      act
      verify
      ;;
    *) die "unknown phase '$phase' (expected validate, act, verify or all)" ;;
  esac
}

main "$@"
