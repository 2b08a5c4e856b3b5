#!/usr/bin/env bash
# cordon-drain-node: cordon a node, evict its pods, verify it is unschedulable and empty.
#
# Usage: remediate.sh [validate|act|verify|all]   (default: all)
# Parameters arrive as environment variables of the same names (TARGET_RESOURCE_NAME,
# TARGET_RESOURCE_KIND, DRAIN_TIMEOUT_SECONDS, DELETE_EMPTYDIR_DATA; TARGET_RESOURCE is
# logged). The drain-policy ConfigMap is mounted read-only at DRAIN_POLICY_DIR; each of its
# keys is optional:
#   max-unschedulable-nodes  refuse when this many OTHER nodes are already cordoned (default 1)
#   min-ready-nodes          refuse unless this many OTHER nodes are Ready and schedulable
#                            (default 1)
#   grace-period-seconds     termination grace period for evicted pods; -1 keeps each pod's
#                            own (default -1)
set -euo pipefail

readonly PLAYBOOK=cordon-drain-node
DRAIN_POLICY_DIR="${DRAIN_POLICY_DIR:-/run/kubernaut/configmaps/drain-policy}"

log() { printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PLAYBOOK" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

require() {
  local name="$1"
  [[ -n "${!name:-}" ]] || die "parameter $name is required but empty"
}

# policy KEY DEFAULT PATTERN: a drain-policy value, checked against PATTERN.
policy() {
  local key="$1" default="$2" pattern="$3" value
  if [[ -f "$DRAIN_POLICY_DIR/$key" ]]; then
    value="$(tr -d '[:space:]' <"$DRAIN_POLICY_DIR/$key")"
  else
    value="$default"
  fi
  [[ "$value" =~ $pattern ]] || die "drain-policy key $key has an invalid value '$value'"
  printf '%s\n' "$value"
}

read_inputs() {
  require TARGET_RESOURCE_NAME
  TARGET_RESOURCE_KIND="${TARGET_RESOURCE_KIND:-Node}"
  DRAIN_TIMEOUT_SECONDS="${DRAIN_TIMEOUT_SECONDS:-600}"
  DELETE_EMPTYDIR_DATA="${DELETE_EMPTYDIR_DATA:-false}"

  [[ "${TARGET_RESOURCE_KIND,,}" == node ]] ||
    die "TARGET_RESOURCE_KIND must be Node, got '$TARGET_RESOURCE_KIND'"
  [[ "$TARGET_RESOURCE_NAME" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] ||
    die "TARGET_RESOURCE_NAME '$TARGET_RESOURCE_NAME' is not a valid node name"
  if ! [[ "$DRAIN_TIMEOUT_SECONDS" =~ ^[0-9]{1,5}$ ]] ||
    ((10#$DRAIN_TIMEOUT_SECONDS < 60 || 10#$DRAIN_TIMEOUT_SECONDS > 1200)); then
    die "DRAIN_TIMEOUT_SECONDS must be an integer from 60 to 1200, got '$DRAIN_TIMEOUT_SECONDS'"
  fi
  DRAIN_TIMEOUT_SECONDS=$((10#$DRAIN_TIMEOUT_SECONDS))
  case "${DELETE_EMPTYDIR_DATA,,}" in
    true | false) DELETE_EMPTYDIR_DATA="${DELETE_EMPTYDIR_DATA,,}" ;;
    *) die "DELETE_EMPTYDIR_DATA must be true or false, got '$DELETE_EMPTYDIR_DATA'" ;;
  esac

  if [[ ! -d "$DRAIN_POLICY_DIR" ]]; then
    log "warning: no drain policy at $DRAIN_POLICY_DIR; using the defaults"
  fi
  MAX_UNSCHEDULABLE="$(policy max-unschedulable-nodes 1 '^[0-9]{1,4}$')"
  MIN_READY="$(policy min-ready-nodes 1 '^[0-9]{1,4}$')"
  GRACE_PERIOD="$(policy grace-period-seconds -1 '^-1$|^[0-9]{1,5}$')"

  NODE="$TARGET_RESOURCE_NAME"
  log "target: node $NODE (signal target: ${TARGET_RESOURCE:-unset});" \
    "policy: max-unschedulable-nodes=$MAX_UNSCHEDULABLE min-ready-nodes=$MIN_READY" \
    "grace-period-seconds=$GRACE_PERIOD"
}

node_unschedulable() {
  local value
  value="$(kubectl get node "$NODE" -o 'jsonpath={.spec.unschedulable}')" ||
    die "node $NODE not found or not readable"
  [[ "$value" == true ]]
}

validate() {
  if node_unschedulable; then
    log "validate: node $NODE is already cordoned (a retried run?)"
  fi
  local nodes name unschedulable ready cordoned=0 healthy=0
  nodes="$(kubectl get nodes -o \
    'jsonpath={range .items[*]}{.metadata.name}{"|"}{.spec.unschedulable}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')" ||
    die "cannot list nodes"
  while IFS='|' read -r name unschedulable ready; do
    [[ -n "$name" && "$name" != "$NODE" ]] || continue
    if [[ "$unschedulable" == true ]]; then
      cordoned=$((cordoned + 1))
    elif [[ "$ready" == True ]]; then
      healthy=$((healthy + 1))
    fi
  done <<<"$nodes"
  log "validate: other nodes: $healthy Ready and schedulable, $cordoned cordoned"
  ((cordoned < MAX_UNSCHEDULABLE)) ||
    die "$cordoned other node(s) are already cordoned (policy allows fewer than $MAX_UNSCHEDULABLE)"
  ((healthy >= MIN_READY)) ||
    die "only $healthy other node(s) are Ready and schedulable (policy needs $MIN_READY)"
  log "validate: ok"
}

act() {
  kubectl cordon "$NODE" || die "kubectl cordon failed"
  local args=(drain "$NODE" --ignore-daemonsets --timeout="${DRAIN_TIMEOUT_SECONDS}s"
    --grace-period="$GRACE_PERIOD")
  if [[ "$DELETE_EMPTYDIR_DATA" == true ]]; then
    args+=(--delete-emptydir-data)
  fi
  # Evictions honour PodDisruptionBudgets; on failure the node stays cordoned, which is the
  # safe state for a failing node.
  kubectl "${args[@]}" || die "kubectl drain did not finish; node $NODE stays cordoned"
  log "act: node $NODE cordoned and drained"
}

verify() {
  node_unschedulable || die "node $NODE is schedulable again"
  local pods pod phase owners mirror left=()
  pods="$(kubectl get pods --all-namespaces --field-selector "spec.nodeName=$NODE" -o \
    'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"|"}{.status.phase}{"|"}{.metadata.ownerReferences[*].kind}{"|"}{.metadata.annotations.kubernetes\.io/config\.mirror}{"\n"}{end}')" ||
    die "cannot list the pods on node $NODE"
  while IFS='|' read -r pod phase owners mirror; do
    [[ -n "$pod" ]] || continue
    # What drain leaves behind by design: DaemonSet pods, static (mirror) pods, finished pods.
    [[ " $owners " == *" DaemonSet "* || -n "$mirror" ]] && continue
    [[ "$phase" == Succeeded || "$phase" == Failed ]] && continue
    left+=("$pod")
  done <<<"$pods"
  ((${#left[@]} == 0)) || die "pods still on node $NODE: ${left[*]}"
  log "verify: ok, node $NODE is unschedulable and runs no evictable pods"
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
