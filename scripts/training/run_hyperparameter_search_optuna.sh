#!/usr/bin/env bash
# Start the hyperparameter search in tmux session `luca_hyperparam_search` (survives logout; re-running
# resumes: finished trials are kept, a trainer still alive in its own tmux session is re-adopted).
#   scripts/training/run_hyperparameter_search_optuna.sh [--base-config NAME] [--references DIR]
#       [--output DIR] [--trials N] [--session NAME] [-- extra `lora-pipeline search` options]
# Defaults: preset luca_final_v1_pure, references data/references/luca, output outputs/luca_hyperparam_search,
# 20 trials, the space configs/search/luca_tpe_v2_1.toml. Extra options, e.g. `-- --pruner hyperband
# --storage postgresql://user:pass@db:5432/optuna` (then add GPUs with `lora-pipeline search worker`).
# A password in the storage URL never reaches a command line (ps, tmux): it is moved to OUTPUT/.pgpass
# (mode 0600) and the search reads it through PGPASSFILE; an existing ~/.pgpass or PGPASSFILE works too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_cli.sh"

base_config="luca_final_v1_pure"
references="$root/data/references/luca"
output="$root/outputs/luca_hyperparam_search"
trials=20
session="luca_hyperparam_search"
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base-config) base_config="$2"; shift 2 ;;
        --references) references="$2"; shift 2 ;;
        --output) output="$2"; shift 2 ;;
        --trials) trials="$2"; shift 2 ;;
        --session) session="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

command -v tmux >/dev/null 2>&1 || { echo "tmux is not installed (apt-get install tmux)" >&2; exit 1; }
if tmux has-session -t "=$session" 2>/dev/null; then
    echo "tmux session $session is already running: tmux attach -t $session" >&2
    exit 1
fi
mkdir -p "$output"
launch_env=()
url_pattern='^(postgresql[^:/]*://)([^:@/]+):([^@/]*)@([^:/]+)(:([0-9]+))?/(.+)$'
for i in "${!extra[@]}"; do
    value=${extra[$i]} prefix=""
    if [[ "$value" == --storage=* ]]; then prefix="--storage="; value=${value#--storage=}
    elif (( i == 0 )) || [[ "${extra[$((i - 1))]}" != "--storage" ]]; then continue; fi
    [[ "$value" =~ $url_pattern ]] || continue
    scheme=${BASH_REMATCH[1]} user=${BASH_REMATCH[2]} password=${BASH_REMATCH[3]} host=${BASH_REMATCH[4]}
    port=${BASH_REMATCH[6]:-5432} database=${BASH_REMATCH[7]%%\?*}
    printf -v password '%b' "${password//%/\\x}"            # the URL's percent-escapes, decoded
    password=${password//\\/\\\\}; password=${password//:/\\:}   # pgpass escapes \ and :
    (umask 077 && printf '%s:%s:%s:%s:%s\n' "$host" "$port" "$database" "$user" "$password" >"$output/.pgpass")
    extra[$i]="$prefix$scheme$user@$host${BASH_REMATCH[5]}/${BASH_REMATCH[7]}"
    launch_env=(env "PGPASSFILE=$output/.pgpass")
done
argv=("${launch_env[@]}" "${cli[@]}" search --space "$root/configs/search/luca_tpe_v2_1.toml" --base-config "$base_config"
      --references "$references" --trials "$trials" --output "$output" "${extra[@]}")
# tmux runs one shell command: quote every word so that paths with spaces stay whole.
printf -v command '%q ' "${argv[@]}"
tmux new-session -d -s "$session" -c "$root" "$command 2>&1 | tee -a $(printf '%q' "$output/search.log")"
echo "search started in tmux session $session"
echo "attach:    tmux attach -t $session      (detach again with Ctrl-b d)"
echo "monitor:   scripts/training/monitor_hyperparam_optuna.sh --output $output"
echo "dashboard: optuna-dashboard --host 127.0.0.1 --port 8080 sqlite:///$output/optuna_study.db"
echo "analyze:   ${cli[*]} search analyze $output"
