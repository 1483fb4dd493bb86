# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Bash completion for dozectl: its commands, each command's options (as
# `dozectl --help` shows them; tests/lint/man.sh keeps dozectl(1) to the same
# help), the values of options with a fixed set, and the names of the services
# from `dozectl list --json`, asked of the control socket a --control given
# earlier on the line names (else $DOZED_CONTROL or the default, as dozectl
# itself does). With the daemon down, or slow, it offers no names and says
# nothing: the list is asked with a deadline of one second, its errors dropped.
#
# Installed as bash-completion's completions/dozectl (make install); or
# `source daemon/dozectl/dozectl.bash` in a shell.

_dozectl_commands="enable disable list status sleep wake events flows metrics"
_dozectl_global_options="--control --help --version"

# The options each command takes, beside the global ones.
_dozectl_command_options() {
	case $1 in
	enable) echo "--idle --wake-on --probe --ignore --keep-awake-while-connected --freeze-after --reclaim-frozen" ;;
	list | status) echo "--json" ;;
	events) echo "--follow --json" ;;
	flows) echo "--since --json" ;;
	esac
}

# Whether an option takes a value (the next word, or after "=").
_dozectl_takes_value() {
	case $1 in
	--control | --idle | --wake-on | --probe | --ignore | --freeze-after | --since) return 0 ;;
	esac
	return 1
}

# The positional argument of a command: service (a name dozed manages),
# container (a name it may not know yet) or none.
_dozectl_positional() {
	case $1 in
	disable | status | sleep | wake | flows) echo service ;;
	enable) echo container ;;
	*) echo none ;;
	esac
}

# Names of the services, one per line; nothing when dozed cannot answer.
# $1: the dozectl to run; $2: the control socket, or empty.
_dozectl_services() {
	local -a run=("$1")
	[ -n "$2" ] && run+=(--control "$2")
	local out
	if command -v timeout >/dev/null 2>&1; then
		out=$(timeout 1 "${run[@]}" list --json 2>/dev/null) || return 0
	else
		out=$("${run[@]}" list --json 2>/dev/null) || return 0
	fi
	# Container names are [a-zA-Z0-9][a-zA-Z0-9_.-]*: no quote or escape to
	# unpick, and "name" is a key of each service only. Anything else is not
	# offered: the answer comes from whatever listens on the socket, and a
	# name is never a word the shell would expand.
	local re='"name": *"([^"\\]*)"' safe='^[a-zA-Z0-9][a-zA-Z0-9_.-]*$'
	local whole name
	while [[ $out =~ $re ]]; do
		# Kept first: the next =~ sets BASH_REMATCH again.
		whole=${BASH_REMATCH[0]} name=${BASH_REMATCH[1]}
		out=${out#*"$whole"}
		[[ $name =~ $safe ]] && printf '%s\n' "$name"
	done
}

# The values of an option, for the word being completed ($2).
_dozectl_values() {
	local opt=$1 cur=$2 fixed=""
	case $opt in
	--wake-on) fixed="connect data" ;;
	--probe) fixed="auto tcp http http:/ postgres redis mysql healthcheck" ;;
	--ignore) fixed="none" ;;
	--idle) fixed="never" ;;
	--freeze-after) fixed="none" ;;
	--control)
		compgen -f -- "$cur"
		return
		;;
	esac
	# A duration: the number typed so far and each unit it may take (--idle
	# and --freeze-after are at least 1s, --since at least 1ms).
	if [[ $cur =~ ^[1-9][0-9]*$ ]]; then
		case $opt in
		--idle | --freeze-after) fixed+=" ${cur}s ${cur}m ${cur}h" ;;
		--since) fixed+=" ${cur}ms ${cur}s ${cur}m ${cur}h" ;;
		esac
	fi
	[ -n "$fixed" ] && compgen -W "$fixed" -- "$cur"
}

_dozectl() {
	local cword=$COMP_CWORD
	local -a words=("${COMP_WORDS[@]}")
	local cur=${words[cword]:-} prev="" prefix=""
	((cword > 0)) && prev=${words[cword - 1]}
	COMPREPLY=()

	# "--opt=value": bash splits it at "=" (COMP_WORDBREAKS): --opt, =, value.
	if [ "$cur" = "=" ]; then
		cur="" prev=${words[cword - 1]}
	elif [ "$prev" = "=" ] && ((cword > 1)); then
		prev=${words[cword - 2]}
	elif [[ $cur == --*=* ]]; then
		# Without "=" in COMP_WORDBREAKS: one word, completed whole.
		prev=${cur%%=*} prefix="${cur%%=*}=" cur=${cur#*=}
	fi

	# The words before the cursor: the command, its positional argument,
	# the options already given, and --control's socket.
	local i w cmd="" control="" n_positional=0 used=" "
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if [ "$w" = "=" ]; then
			continue
		elif [[ $w == --*=* ]]; then
			used+="${w%%=*} "
			[ "${w%%=*}" = --control ] && control=${w#*=}
		elif [[ $w == -* ]]; then
			used+="$w "
			if _dozectl_takes_value "$w" && ((i + 1 < cword)); then
				i=$((i + 1))
				[ "${words[i]}" = "=" ] && ((i + 1 < cword)) && i=$((i + 1))
				[ "$w" = --control ] && control=${words[i]}
			fi
		elif [ -z "$cmd" ]; then
			cmd=$w
		else
			n_positional=$((n_positional + 1))
		fi
	done
	# A socket path typed with ~: as the shell would expand it.
	[[ $control == \~/* ]] && control=$HOME/${control#"~/"}

	if _dozectl_takes_value "$prev" && [[ $cur != -* || -n $prefix ]]; then
		mapfile -t COMPREPLY < <(_dozectl_values "$prev" "$cur")
		if [ -n "$prefix" ]; then
			for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=$prefix${COMPREPLY[i]}; done
		fi
		return 0
	fi

	# An option given once is not offered again; the global ones only to a
	# word that starts with "-".
	local o left="" left_cmd=""
	for o in $_dozectl_global_options; do
		[[ $used == *" $o "* ]] || left+="$o "
	done
	if [ -n "$cmd" ]; then
		for o in $(_dozectl_command_options "$cmd"); do
			[[ $used == *" $o "* ]] || left_cmd+="$o "
		done
	fi
	left+=$left_cmd

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$left" -- "$cur")
		return 0
	fi
	if [ -z "$cmd" ]; then
		mapfile -t COMPREPLY < <(compgen -W "$_dozectl_commands" -- "$cur")
		return 0
	fi
	local what
	what=$(_dozectl_positional "$cmd")
	if [ "$what" = service ] && ((n_positional == 0)); then
		local dozectl=${words[0]}
		[[ $dozectl == \~/* ]] && dozectl=$HOME/${dozectl#"~/"}
		# Matched here, not by compgen -W, which would expand each name.
		local name
		while IFS= read -r name; do
			[[ $name == "$cur"* ]] && COMPREPLY+=("$name")
		done < <(_dozectl_services "$dozectl" "$control")
		return 0
	fi
	# A container's name is the runtime's to know, not dozed's: nothing offered.
	[ "$what" = container ] && ((n_positional == 0)) && return 0
	# Nothing positional left: the options the command still takes.
	mapfile -t COMPREPLY < <(compgen -W "$left_cmd" -- "$cur")
	return 0
}

complete -F _dozectl dozectl
