# bash completion for jobfs: subcommands, the flags of jobfs mount, and the
# -o options of the mount helper form (jobfs STATE MOUNTPOINT -o OPTS).
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
        --max-result --noexec --read-only --repos --require-isolation
        --require-limits --state --trusted-keys --help"
    local options="allow_other debug grace= max_active= max_log= max_result=
        noexec read_only repos= require_isolation require_limits state=
        trusted_keys= log= ro rw
        exec nodev nosuid _netdev noauto defaults"

    if [[ $cword -eq 1 ]]; then
        COMPREPLY=($(compgen -W "mount keygen sign version help" -- "$cur"))
        COMPREPLY+=($(compgen -d -- "$cur"))
        return
    fi

    case ${words[1]} in
    mount)
        case $prev in
        --state | --repos) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --trusted-keys) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --grace | --max-active | --max-log | --max-result) return ;;
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
complete -F _jobfs jobfs
