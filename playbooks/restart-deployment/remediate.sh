#!/usr/bin/env bash
# restart-deployment: rolling restart of a Deployment, then wait for the new pods.
#
# Usage: remediate.sh [validate|act|verify|all]   (default: all)
# Parameters arrive as environment variables of the same names (TARGET_RESOURCE_NAME,
# TARGET_RESOURCE_NAMESPACE, TARGET_RESOURCE_KIND, ROLLOUT_TIMEOUT_SECONDS; TARGET_RESOURCE
# is logged). Each phase re-reads the cluster, so the phases can also run as separate tasks.
set -euo pipefail

readonly PLAYBOOK=restart-deployment

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
  require TARGET_RESOURCE_NAME
  require TARGET_RESOURCE_NAMESPACE
  TARGET_RESOURCE_KIND="${TARGET_RESOURCE_KIND:-Deployment}"
  ROLLOUT_TIMEOUT_SECONDS="${ROLLOUT_TIMEOUT_SECONDS:-600}"

  [[ "${TARGET_RESOURCE_KIND,,}" == deployment ]] ||
    die "TARGET_RESOURCE_KIND must be Deployment, got '$TARGET_RESOURCE_KIND'"
  [[ "$TARGET_RESOURCE_NAME" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] ||
    die "TARGET_RESOURCE_NAME '$TARGET_RESOURCE_NAME' is not a valid resource name"
  [[ "$TARGET_RESOURCE_NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] ||
    die "TARGET_RESOURCE_NAMESPACE '$TARGET_RESOURCE_NAMESPACE' is not a valid namespace name"
  if ! [[ "$ROLLOUT_TIMEOUT_SECONDS" =~ ^[0-9]{1,5}$ ]] ||
    ((10#$ROLLOUT_TIMEOUT_SECONDS < 30 || 10#$ROLLOUT_TIMEOUT_SECONDS > 1500)); then
    die "ROLLOUT_TIMEOUT_SECONDS must be an integer from 30 to 1500, got '$ROLLOUT_TIMEOUT_SECONDS'"
  fi
  ROLLOUT_TIMEOUT_SECONDS=$((10#$ROLLOUT_TIMEOUT_SECONDS))

  TARGET="deployments.apps/$TARGET_RESOURCE_NAME"
  log "target: Deployment $TARGET_RESOURCE_NAMESPACE/$TARGET_RESOURCE_NAME" \
    "(signal target: ${TARGET_RESOURCE:-unset})"
}

k() { kubectl --namespace "$TARGET_RESOURCE_NAMESPACE" "$@"; }

# Prints spec.replicas|spec.paused|Progressing reason|generation|observedGeneration|
# status.replicas|updatedReplicas|availableReplicas|restartedAt, one line.
read_state() {
  k get "$TARGET" -o 'jsonpath={.spec.replicas}{"|"}{.spec.paused}{"|"}{.status.conditions[?(@.type=="Progressing")].reason}{"|"}{.metadata.generation}{"|"}{.status.observedGeneration}{"|"}{.status.replicas}{"|"}{.status.updatedReplicas}{"|"}{.status.availableReplicas}{"|"}{.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}' ||
    die "Deployment $TARGET_RESOURCE_NAMESPACE/$TARGET_RESOURCE_NAME not found or not readable"
}

parse_state() {
  IFS='|' read -r REPLICAS PAUSED PROGRESS GENERATION OBSERVED STATUS_REPLICAS UPDATED AVAILABLE RESTARTED_AT <<<"$1"
  # The API omits unset and zero-valued fields.
  REPLICAS="${REPLICAS:-1}" OBSERVED="${OBSERVED:-0}" STATUS_REPLICAS="${STATUS_REPLICAS:-0}"
  UPDATED="${UPDATED:-0}" AVAILABLE="${AVAILABLE:-0}"
}

validate() {
  local state
  state="$(read_state)"
  parse_state "$state"
  log "validate: $REPLICAS replica(s), $AVAILABLE available, progressing: ${PROGRESS:-unknown}"
  [[ "$PAUSED" != true ]] || die "the Deployment is paused; resume it before restarting"
  ((REPLICAS > 0)) || die "the Deployment has 0 replicas; a restart would do nothing"
  [[ "$PROGRESS" != ProgressDeadlineExceeded ]] ||
    die "the current rollout exceeded its progress deadline; roll back instead of restarting"
  log "validate: ok"
}

act() {
  local state
  state="$(read_state)"
  parse_state "$state"
  log "act: previous restart: ${RESTARTED_AT:-never}"
  k rollout restart "$TARGET" || die "kubectl rollout restart failed"
  log "act: restart requested"
}

verify() {
  # rollout status returns once every replica runs the newest template and is available.
  k rollout status "$TARGET" --timeout="${ROLLOUT_TIMEOUT_SECONDS}s" ||
    die "the restarted rollout did not complete within ${ROLLOUT_TIMEOUT_SECONDS}s"
  local state
  state="$(read_state)"
  parse_state "$state"
  [[ -n "$RESTARTED_AT" ]] || die "the pod template carries no restartedAt annotation: no restart happened"
  ((OBSERVED >= GENERATION)) || die "the controller has not observed generation $GENERATION yet"
  ((UPDATED == REPLICAS && AVAILABLE == REPLICAS && STATUS_REPLICAS == REPLICAS)) ||
    die "after the rollout: $UPDATED updated, $AVAILABLE available, $STATUS_REPLICAS total; want $REPLICAS"
  log "verify: ok, $AVAILABLE/$REPLICAS replica(s) available, restarted at $RESTARTED_AT"
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
