#!/bin/bash
# The include rules of docs/design.md ("Parts and where they live"):
#  1. a file includes public headers ("dozed/x.h") and the private headers of
#     its own folder only ("x.h" beside it; tests also tests/lib's; the
#     skeletons bpftool generates into the build dir);
#  2. no two modules depend on each other, directly or around a longer circle.
#     A module is x.c with its header x.h; a header with no .c of its name
#     (list.h, a layout, a folder's *_internal.h) belongs to whoever includes
#     it, so what it includes counts for its includer.
# Prints each violation and exits 1; prints a summary and exits 0 otherwise.
set -u
cd "$(dirname "$0")/../.." || exit 1

mapfile -t files < <(git ls-files 'daemon/*.[ch]' 'activator/*.[ch]' 'nft/*.[ch]' 'bpf/*.[ch]' \
	'include/*.h' 'tests/*.[ch]' 2>/dev/null || find daemon activator nft bpf include tests -name '*.[ch]')
bad=0
declare -A header_path module_of has_c deps

for f in "${files[@]}"; do
	b=$(basename "$f")
	case $f in *.c) has_c[${b%.c}]=1 ;; *.h) header_path[$b]=$f ;; esac
done

includes_of() { sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1"; }

# Rule 1, and the header each quoted include names.
for f in "${files[@]}"; do
	dir=$(dirname "$f")
	while read -r inc; do
		[ -n "$inc" ] || continue
		case $inc in
		dozed/*) [ -f "include/$inc" ] || { echo "$f: includes $inc, which is not in include/dozed/"; bad=1; } ;;
		*/*) echo "$f: includes \"$inc\": another folder's private header"; bad=1 ;;
		*.skel.h) [[ $f == bpf/* ]] || { echo "$f: includes the skeleton $inc outside bpf/"; bad=1; } ;;
		*) if [ ! -f "$dir/$inc" ] && ! { [[ $f == tests/* ]] && [ -f "tests/lib/$inc" ]; }; then
			echo "$f: includes \"$inc\", which is not beside it"
			bad=1
		   fi ;;
		esac
	done < <(includes_of "$f")
done

# Rule 2. A module is the .c files and headers that go together: a header
# joins the .c files that define what it declares (nft.h: nft_set.c and
# nft_table.c), and the files of a folder that share a private *_internal.h
# are one module (they are written to call each other through it). A header
# that no .c implements (list.h, a BPF layout) belongs to whoever includes
# it, so what it includes counts for its includer.
resolve() { # the path of an included name, from the including file
	case $2 in
	dozed/*) echo "include/$2" ;;
	*) if [ -f "$(dirname "$1")/$2" ]; then echo "$(dirname "$1")/$2"; elif [ -f "tests/lib/$2" ]; then echo "tests/lib/$2"; fi ;;
	esac
}
declare -A parent owned
root() { # union-find, after the dependency graph of modules, not of files
	local x=$1
	while [ "${parent[$x]:-$x}" != "$x" ]; do x=${parent[$x]}; done
	ROOT=$x
}
join() {
	root "$1"; local a=$ROOT
	root "$2"; [ "$a" != "$ROOT" ] && parent[$a]=$ROOT
	owned[$1]=1 owned[$2]=1
}
# Functions each file defines (.c) or declares (.h), outside comments.
names_of() {
	awk 'FNR == 1 { c = 0 } /^\/\*/ { c = 1 } c && /\*\// { c = 0; next } c { next }
	     /^[A-Za-z_]/ && !/^(static|#|typedef)/ && /\(/ {
		if (FILENAME ~ /\.c$/ && $0 ~ /;[[:space:]]*$/) next
		l = $0; sub(/\(.*/, "", l); n = split(l, w, /[^A-Za-z0-9_]+/)
		if (w[n] != "") print FILENAME, w[n]
	     }' "$@"
}
src=() hdr=()
for f in "${files[@]}"; do
	[[ $f == tests/* || $f == *.bpf.c ]] && continue
	case $f in *.c) src+=("$f") ;; *.h) hdr+=("$f") ;; esac
done
for f in "${src[@]}"; do
	while read -r inc; do
		[[ $inc == *_internal.h ]] && join "$f" "$(dirname "$f")/$inc"
	done < <(includes_of "$f")
	for h in "${hdr[@]}"; do
		[ "$(basename "$h" .h)" = "$(basename "$f" .c)" ] && join "$f" "$h"
	done
done
declare -A defined_in
while read -r f n; do defined_in[$n]=$f; done < <(names_of "${src[@]}")
while read -r h n; do
	[ -n "${defined_in[$n]:-}" ] && join "$h" "${defined_in[$n]}"
done < <(names_of "${hdr[@]}")

reach() { # the owned headers file leads to, through header-only ones
	local f=$1 inc p
	while read -r inc; do
		p=$(resolve "$f" "$inc")
		[ -n "$p" ] || continue
		if [ -n "${owned[$p]:-}" ]; then
			echo "$p"
		elif [[ " $2 " != *" $p "* ]]; then
			reach "$p" "$2 $p"
		fi
	done < <(includes_of "$f")
}
name() { local b=${1##*/}; echo "${b%.*}"; }
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for f in "${src[@]}" "${hdr[@]}"; do
	[ -n "${owned[$f]:-}" ] || continue
	root "$f"; from=$ROOT
	for p in $(reach "$f" "$f" | sort -u); do
		root "$p"
		[ "$ROOT" != "$from" ] && echo "$(name "$from") $(name "$ROOT")"
	done
done | sort -u > "$edges"
# tsort names the modules of a circle on stderr.
if ! loops=$(tsort < "$edges" 2>&1 >/dev/null) || [ -n "$loops" ]; then
	echo "the modules' include graph has a circle (each one: the modules around it):"
	echo "$loops" | sed -e 's/^tsort: -: input contains a loop:$/  circle:/' -e 's/^tsort: /    /'
	bad=1
fi
[ $bad -eq 0 ] && echo "includes: ${#files[@]} files, $(wc -l < "$edges") module dependencies, no circle, no private header of another folder"
exit $bad
