# bash completion for jobfs: subcommands, the flags of jobfs mount, the -o
# options of the mount helper form (jobfs STATE MOUNTPOINT -o OPTS), and the
# client's flags, jobs and run ids (read from the mount).
_jobfs() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion -n = || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local mount_flags="--allow-other --debug --grace --max-active --max-log
        --max-result --noexec --read-only --repos --require-isolation --stop-runs-on-exit
        --require-limits --state --trusted-keys --metrics --log-format
        --max-job-log --slurm --slurm-shim --store --etcd-ca --etcd-cert --etcd-key --etcd-prefix
        --etcd-lease --data --node --no-execute --help"
    local options="allow_other debug grace= max_active= max_log= max_result=
        noexec read_only repos= require_isolation require_limits slurm slurm_shim= state=
        trusted_keys= metrics= log_format= max_job_log= store= etcd_ca=
        etcd_cert= etcd_key= etcd_prefix= etcd_lease= data= node= no_execute
        log= ro rw
        exec nodev nosuid _netdev noauto defaults"

    if [[ $cword -eq 1 ]]; then
        COMPREPLY=($(compgen -W "mount keygen sign run ps logs stop kill wait version help" -- "$cur"))
        COMPREPLY+=($(compgen -d -- "$cur"))
        return
    fi

    case ${words[1]} in
    mount)
        case $prev in
        --state | --repos | --data) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --trusted-keys | --etcd-ca | --etcd-cert | --etcd-key) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --grace | --max-active | --max-log | --max-result | --metrics | --max-job-log) return ;;
        --store | --etcd-prefix | --etcd-lease | --node) return ;;
        --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$mount_flags" -- "$cur"))
        else
            COMPREPLY=($(compgen -d -- "$cur"))
        fi
        ;;
    keygen)
        [[ $prev == -o ]] && COMPREPLY=($(compgen -f -- "$cur")) ||
            COMPREPLY=($(compgen -W "-o" -- "$cur"))
        ;;
    sign)
        case $prev in
        -k) COMPREPLY=($(compgen -f -- "$cur")) ;;
        *) [[ $cur == -* ]] && COMPREPLY=($(compgen -W "-k" -- "$cur")) ||
            COMPREPLY=($(compgen -d -- "$cur")) ;;
        esac
        ;;
    version | help) ;;
    run | ps | logs | stop | kill | wait)
        _jobfs_client
        ;;
    *)
        # The helper form: STATE MOUNTPOINT -o OPT,OPT... -f
        if [[ $prev == -o ]]; then
            local done=${cur%"${cur##*,}"} last=${cur##*,}
            COMPREPLY=($(compgen -P "$done" -W "$options" -- "$last"))
            compopt -o nospace 2>/dev/null
        elif [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-o -f -d -h" -- "$cur"))
        else
            COMPREPLY=($(compgen -d -- "$cur"))
        fi
        ;;
    esac
}
# _jobfs_client completes a client command: its flags, a job of the mount
# (--mount, $JOBFS_MOUNT or the only fuse.jobfs mount), then a run id.
_jobfs_client() {
    local cmd=${words[1]} flags="--mount --help" mnt=${JOBFS_MOUNT-} i
    COMPREPLY=()
    case $cmd in
    run) flags+=" --wait" ;;
    logs) flags+=" -f" ;;
    esac
    if [[ $prev == --mount || $prev == -mount ]]; then
        COMPREPLY=($(compgen -d -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    local ops=()
    for ((i = 2; i < cword; i++)); do
        case ${words[i]} in
        --mount | -mount) mnt=${words[i+1]}; ((i++)) ;;
        -*) ;;
        *) ops+=("${words[i]}") ;;
        esac
    done
    if [[ -z $mnt ]]; then
        mnt=$(awk '{for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "fuse.jobfs") print $5; break }}' \
            /proc/self/mountinfo 2>/dev/null)
        [[ $mnt == *$'\n'* ]] && return # several: --mount chooses
    fi
    [[ -d $mnt && $cmd != ps ]] || return
    local IFS=$'\n'
    case ${#ops[@]} in
    0)
        COMPREPLY=($(cd "$mnt" 2>/dev/null && compgen -W "$(ls -1 | grep -v '^[.@]'; ls -1d @*/* 2>/dev/null)" -- "$cur"))
        ;;
    1)
        [[ $cmd == run ]] && return
        COMPREPLY=($(compgen -W "latest $(ls -1 "$mnt/${ops[0]}/runs" 2>/dev/null | grep -v '^latest$')" -- "$cur"))
        ;;
    esac
}
complete -F _jobfs jobfs
