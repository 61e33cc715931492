# bash completion for nsjail; generated from nsjail's option table, do not edit
_nsjail() {
    local cur prev i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    # after --: the command (an absolute path) and its arguments
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == -- ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
            return
        fi
    done
    case $prev in
        --mode|-M)
            COMPREPLY=($(compgen -W 'l o e r' -- "$cur"))
            return ;;
        --config|-C|--exec_file|-x|--log|-l|--seccomp_policy|-P|--seccomp_unotify_report|--run_report)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        --chroot|-c|--cgroup_mem_mount|--cgroup_pids_mount|--cgroup_net_cls_mount|--cgroup_cpu_mount|--cgroupv2_mount)
            COMPREPLY=($(compgen -d -- "$cur"))
            return ;;
        --user|-u|--group|-g|--hostname|-H|--cwd|-D|--port|-p|--bindhost|--max_conns|--max_conns_per_ip|-i|--log_fd|-L|--time_limit|-t|--max_cpus|--env|-E|--cap|--pass_fd|--uid_mapping|-U|--gid_mapping|-G|--bindmount_ro|-R|--bindmount|-B|--tmpfsmount|-T|--mount|-m|--symlink|-s|--proc_path|--seccomp_string|--nice_level|--cgroup_mem_max|--cgroup_mem_memsw_max|--cgroup_mem_swap_max|--cgroup_mem_parent|--cgroup_pids_max|--cgroup_pids_parent|--cgroup_net_cls_classid|--cgroup_net_cls_parent|--cgroup_cpu_ms_per_sec|--cgroup_cpu_parent|--iface_own|--macvlan_iface|-I|--macvlan_vs_ip|--macvlan_vs_nm|--macvlan_vs_gw|--macvlan_vs_ma|--oom_score_adj)
            COMPREPLY=()
            return ;;
        --rlimit_as|--rlimit_core|--rlimit_cpu|--rlimit_fsize|--rlimit_nofile|--rlimit_nproc|--rlimit_stack|--rlimit_memlock|--rlimit_rtprio|--rlimit_msgqueue)
            COMPREPLY=($(compgen -W 'max hard def soft inf' -- "$cur"))
            return ;;
        --experimental_mnt)
            COMPREPLY=($(compgen -W 'auto new old' -- "$cur"))
            return ;;
        --macvlan_vs_mo)
            COMPREPLY=($(compgen -W 'private vepa bridge passthru' -- "$cur"))
            return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '--help -h --version -V --mode -M --config -C --exec_file -x --execute_fd --chroot -c --no_pivotroot --rw --user -u --group -g --hostname -H --cwd -D --port -p --bindhost --max_conns --max_conns_per_ip -i --log -l --log_fd -L --time_limit -t --max_cpus --daemon -d --verbose -v --quiet -q --really_quiet -Q --keep_env -e --env -E --keep_caps --cap --silent --stderr_to_null --skip_setsid --pass_fd --disable_no_new_privs --rlimit_as --rlimit_core --rlimit_cpu --rlimit_fsize --rlimit_nofile --rlimit_nproc --rlimit_stack --rlimit_memlock --rlimit_rtprio --rlimit_msgqueue --disable_rlimits --persona_addr_compat_layout --persona_mmap_page_zero --persona_read_implies_exec --persona_addr_limit_3gb --persona_addr_no_randomize --disable_clone_newnet -N --disable_clone_newuser --disable_clone_newns --disable_clone_newpid --disable_clone_newipc --disable_clone_newuts --disable_clone_newcgroup --enable_clone_newtime --uid_mapping -U --gid_mapping -G --bindmount_ro -R --bindmount -B --tmpfsmount -T --mount -m --symlink -s --disable_proc --proc_path --proc_rw --experimental_mnt --seccomp_policy -P --seccomp_string --seccomp_log --seccomp_unotify --seccomp_unotify_report --nice_level --cgroup_mem_max --cgroup_mem_memsw_max --cgroup_mem_swap_max --cgroup_mem_mount --cgroup_mem_parent --cgroup_pids_max --cgroup_pids_mount --cgroup_pids_parent --cgroup_net_cls_classid --cgroup_net_cls_mount --cgroup_net_cls_parent --cgroup_cpu_ms_per_sec --cgroup_cpu_mount --cgroup_cpu_parent --cgroupv2_mount --use_cgroupv2 --detect_cgroupv2 --iface_no_lo --iface_own --macvlan_iface -I --macvlan_vs_ip --macvlan_vs_nm --macvlan_vs_gw --macvlan_vs_ma --macvlan_vs_mo --disable_tsc --forward_signals --use_core_scheduling --user_net --use_pasta --oom_score_adj --check --run_report --allow_bind_symlinks --allow_vsock' -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _nsjail nsjail
