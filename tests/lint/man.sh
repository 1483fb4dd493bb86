#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The man pages (docs/man/) against the one source of the options, so that
# they cannot drift apart:
#  1. mandoc -T lint -W warning finds nothing in dozed(8), dozectl(1) and
#     dozed.conf(5), nor groff -ww (when installed: man-db renders with it);
#  2. dozed(8)'s OPTIONS (".It Fl ...") are exactly the options of
#     `$BUILD/dozed --help` (its lines that start with an option);
#  3. dozed.conf(5)'s KEYS (".It Cm KEY") are exactly those options without
#     "--", less the command-line-only ones (daemon/config_keys.c's key table, its
#     args_only column); and that table has exactly the options of the help;
#  4. dozectl(1)'s COMMANDS (".It Cm") and SYNOPSIS are exactly the commands of
#     `$BUILD/dozectl --help`, each in SYNOPSIS with the options the help shows
#     in brackets for it; its OPTIONS are exactly the help's options (in
#     brackets, or on a line of their own: "  --control PATH"), plus
#     --help and --version (which the help does not list: checked by running
#     them);
#  5. an option a page mentions anywhere (Fl) is an option of dozed or dozectl.
# Prints each drift, naming the option and the page, and exits 1; prints a
# summary and exits 0 otherwise.
#
# Usage: [BUILD=build] [MAN_DIR=docs/man] tests/lint/man.sh
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
# MAN_DIR: other pages, to try the check itself on a changed copy.
MAN=${MAN_DIR:-docs/man}
DOZED8=$MAN/dozed.8 DOZECTL1=$MAN/dozectl.1 CONF5=$MAN/dozed.conf.5

command -v mandoc >/dev/null || { echo "man: missing mandoc ('make deps' installs it)"; exit 1; }
for bin in dozed dozectl; do
	[ -x "$BUILD/$bin" ] || { echo "man: $BUILD/$bin is not built (make BUILD=$BUILD)"; exit 1; }
done
for page in "$DOZED8" "$DOZECTL1" "$CONF5"; do
	[ -f "$page" ] || { echo "man: $page is missing"; exit 1; }
done

bad=0
drift() { echo "man: $*"; bad=1; }

# --- what the pages say (their mdoc source) -------------------------------------

# The option of each word after an Fl macro on the lines given: "\-idle" is
# --idle, "h" is -h.
fl_words() {
	awk '{
		for (i = 1; i < NF; i++)
			if ($i == "Fl" || $i == ".Fl") {
				w = $(i + 1)
				sub(/^\\-/, "-", w)
				if (w ~ /^-?[a-zA-Z][a-zA-Z0-9-]*$/) print "-" w
			}
	}' | sort -u
}
# Options a page defines: its ".It Fl ..." items.
page_defined() { grep -E '^\.It Fl ' "$1" | fl_words; }
# Every option a page mentions.
page_mentioned() { fl_words <"$1"; }
# A section's lines.
page_section() { # page name
	awk -v s="$2" '/^\.Sh / { on = (substr($0, 5) == s); next } on' "$1"
}
# The ".It Cm WORD" items of a section of a page (nested lists' too: keep
# those to other macros).
page_cm_items() { # page section
	page_section "$1" "$2" | sed -n 's/^\.It Cm \([a-z][a-z0-9-]*\).*/\1/p' | sort -u
}
# "COMMAND OPTION" for each option of each command of dozectl(1)'s SYNOPSIS,
# "COMMAND" alone for one without options; --control is every command's.
page_synopsis_pairs() {
	page_section "$DOZECTL1" SYNOPSIS | awk '
		function flush() { if (cmd != "" && !n) print cmd; cmd = ""; n = 0 }
		/^\.Nm/ { flush(); next }
		/^\.Cm / && cmd == "" { cmd = $2; next }
		{
			for (i = 1; i < NF; i++)
				if ($i == "Fl" || $i == ".Fl") {
					w = $(i + 1)
					sub(/^\\-/, "-", w)
					if (cmd != "" && w != "-control") { print cmd " -" w; n++ }
				}
		}
		END { flush() }' | sort -u
}

# --- what the programs say ----------------------------------------------------------

# Options on the help's definition lines ("  --idle DURATION ...", "  -h, --help").
help_defined() {
	awk '/^  -/ {
		for (i = 1; i <= NF; i++) {
			w = $i
			sub(/,$/, "", w)
			if (w ~ /^--?[a-zA-Z][a-zA-Z0-9-]*$/) print w
			else break
		}
	}' | sort -u
}
# dozectl's help: its options (those in brackets, "[--json]", and those on
# definition lines, "  --control PATH"; not those its descriptions name, which
# may be dozed's), its commands, and "COMMAND OPTION" for the bracketed options
# of each command's line and its "[...]" continuations.
help_all_options() {
	local text
	text=$(cat)
	{
		printf '%s\n' "$text" | grep -oE -- '\[--[a-z][a-z0-9-]*' | sed 's/^\[//'
		printf '%s\n' "$text" | help_defined
	} | sort -u
}
help_commands() { awk '/^  [a-z][a-z0-9-]*( |$)/ { print $1 }' | sort -u; }
help_pairs() {
	awk '
		function opts(line, m) {
			while (match(line, /\[--[a-z][a-z0-9-]*/)) {
				print cmd " " substr(line, RSTART + 1, RLENGTH - 1)
				n++
				line = substr(line, RSTART + RLENGTH)
			}
		}
		/^  [a-z][a-z0-9-]*( |$)/ { if (cmd != "" && !n) print cmd; cmd = $1; n = 0; opts($0); next }
		/^      \[/ && cmd != "" { opts($0); next }
		/^  [^ ]/ || /^$/ { if (cmd != "" && !n) print cmd; cmd = ""; n = 0 }
		END { if (cmd != "" && !n) print cmd }' | sort -u
}

# --- the comparisons ------------------------------------------------------------------

# only_in A B: the lines of list A (a string) that list B lacks.
only_in() { comm -23 <(printf '%s\n' "$1" | sed '/^$/d') <(printf '%s\n' "$2" | sed '/^$/d'); }
# drift_each A B MESSAGE: for each line of list A that list B lacks, a drift:
# MESSAGE with each @ in it replaced by the line.
drift_each() {
	local x
	for x in $(only_in "$1" "$2"); do
		drift "${3//@/"$x"}"
	done
}
# quiet_or_drift WHAT CMD...: a drift naming WHAT, with CMD's output indented,
# unless CMD exits 0 and says nothing.
quiet_or_drift() {
	local what=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || [ -n "$out" ]; then
		drift "$what (exit $rc):"
		printf '%s\n' "$out" | sed 's/^/    /'
	fi
}

dozed_help=$("$BUILD/dozed" --help) || { echo "man: $BUILD/dozed --help failed"; exit 1; }
dozectl_help=$("$BUILD/dozectl" --help) || { echo "man: $BUILD/dozectl --help failed"; exit 1; }

# 1. mandoc; and groff, which man-db renders with, where it is installed.
for page in "$DOZED8" "$DOZECTL1" "$CONF5"; do
	quiet_or_drift "$page: mandoc -T lint -W warning" mandoc -T lint -W warning "$page"
	command -v groff >/dev/null || continue
	quiet_or_drift "$page: groff -ww -mandoc" groff -ww -b -z -mandoc -Tutf8 "$page"
done

# 2. dozed(8) and dozed --help.
dozed_opts=$(printf '%s\n' "$dozed_help" | help_defined)
dozed8_opts=$(page_defined "$DOZED8")
drift_each "$dozed_opts" "$dozed8_opts" \
	"dozed(8) ($DOZED8) does not document @, which '$BUILD/dozed --help' has"
drift_each "$dozed8_opts" "$dozed_opts" \
	"dozed(8) ($DOZED8) documents @, which '$BUILD/dozed --help' does not have"

# 3. dozed.conf(5), the help and config_keys.c's key table.
table_keys=$(sed -n 's/^[[:space:]]*\[KEY_[A-Z_]*\] = {"\([a-z0-9-]*\)",.*/\1/p' daemon/config_keys.c | sort -u)
args_only=$(sed -n 's/^[[:space:]]*\[KEY_[A-Z_]*\] = {"\([a-z0-9-]*\)", [A-Za-z_]*, true,.*/\1/p' daemon/config_keys.c | sort -u)
[ -n "$table_keys" ] || drift "daemon/config_keys.c: no key table found ([KEY_...] = {\"name\", set, args_only, flag})"
help_long=$(printf '%s\n' "$dozed_opts" | sed -n 's/^--//p' | sort -u)
drift_each "$help_long" "$table_keys" \
	"'$BUILD/dozed --help' has --@, which daemon/config_keys.c's key table does not"
drift_each "$table_keys" "$help_long" \
	"daemon/config_keys.c's key table has @, which '$BUILD/dozed --help' does not show"
keys=$(only_in "$help_long" "$args_only")
conf5_keys=$(page_cm_items "$CONF5" KEYS)
drift_each "$keys" "$conf5_keys" \
	"dozed.conf(5) ($CONF5) does not document the key @ (--@ in '$BUILD/dozed --help')"
for k in $(only_in "$conf5_keys" "$keys"); do
	if printf '%s\n' "$args_only" | grep -qx -- "$k"; then
		drift "dozed.conf(5) ($CONF5) documents the key $k, which is command-line only (daemon/config_keys.c)"
	else
		drift "dozed.conf(5) ($CONF5) documents the key $k, which '$BUILD/dozed --help' does not have"
	fi
done

# 4. dozectl(1) and dozectl --help.
dozectl_opts=$(printf '%s\n' "$dozectl_help" | help_all_options)
extra=""
for o in --help --version; do
	if "$BUILD/dozectl" "$o" >/dev/null 2>&1; then
		extra+="$o"$'\n'
	fi
done
dozectl1_opts=$(page_defined "$DOZECTL1")
drift_each "$dozectl_opts" "$dozectl1_opts" \
	"dozectl(1) ($DOZECTL1) does not document @, which '$BUILD/dozectl --help' has"
drift_each "$dozectl1_opts" "$(printf '%s\n%s' "$dozectl_opts" "$extra" | sort -u)" \
	"dozectl(1) ($DOZECTL1) documents @, which '$BUILD/dozectl --help' does not have"
help_cmds=$(printf '%s\n' "$dozectl_help" | help_commands)
page_cmds=$(page_cm_items "$DOZECTL1" COMMANDS)
syn_pairs=$(page_synopsis_pairs)
syn_cmds=$(printf '%s\n' "$syn_pairs" | awk 'NF { print $1 }' | sort -u)
drift_each "$help_cmds" "$page_cmds" \
	"dozectl(1) ($DOZECTL1) does not describe the command @ (COMMANDS), which '$BUILD/dozectl --help' has"
drift_each "$page_cmds" "$help_cmds" \
	"dozectl(1) ($DOZECTL1) describes the command @, which '$BUILD/dozectl --help' does not have"
drift_each "$help_cmds" "$syn_cmds" \
	"dozectl(1) ($DOZECTL1) SYNOPSIS lacks the command @, which '$BUILD/dozectl --help' has"
drift_each "$syn_cmds" "$help_cmds" \
	"dozectl(1) ($DOZECTL1) SYNOPSIS has the command @, which '$BUILD/dozectl --help' does not have"
help_p=$(printf '%s\n' "$dozectl_help" | help_pairs)
while read -r c o; do
	[ -n "$o" ] || continue
	printf '%s\n' "$syn_cmds" | grep -qx -- "$c" || continue
	drift "dozectl(1) ($DOZECTL1) SYNOPSIS: $c lacks $o, which '$BUILD/dozectl --help' shows for it"
done < <(only_in "$help_p" "$syn_pairs")
while read -r c o; do
	[ -n "$o" ] || continue
	printf '%s\n' "$help_cmds" | grep -qx -- "$c" || continue
	drift "dozectl(1) ($DOZECTL1) SYNOPSIS: $c takes $o, which '$BUILD/dozectl --help' does not show for it"
done < <(only_in "$syn_pairs" "$help_p")

# 5. Every option mentioned is one of the two programs'.
known=$(printf '%s\n%s\n%s' "$dozed_opts" "$dozectl_opts" "$extra" | sort -u)
for page in "$DOZED8" "$DOZECTL1" "$CONF5"; do
	drift_each "$(page_mentioned "$page")" "$known" \
		"$page mentions @, which neither '$BUILD/dozed --help' nor '$BUILD/dozectl --help' has"
done

if [ $bad -ne 0 ]; then
	echo "man: the pages do not lint clean, or disagree with the programs' --help (above)"
	exit 1
fi
echo "man: 3 pages lint clean; $(printf '%s\n' "$dozed_opts" | wc -l) dozed options," \
	"$(printf '%s\n' "$keys" | wc -l) config keys, $(printf '%s\n' "$help_cmds" | wc -l) dozectl" \
	"commands and $(printf '%s\n' "$dozectl_opts" | wc -l) options match their pages"
