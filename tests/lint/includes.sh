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

# Rule 2: the modules each module reaches, through header-only headers.
resolve() { # the path of an included name, from the including file
	case $2 in
	dozed/*) echo "include/$2" ;;
	*) if [ -f "$(dirname "$1")/$2" ]; then echo "$(dirname "$1")/$2"; elif [ -f "tests/lib/$2" ]; then echo "tests/lib/$2"; fi ;;
	esac
}
reach() { # module, file, seen-list: prints the modules file leads to
	local m=$1 f=$2 inc p b
	while read -r inc; do
		p=$(resolve "$f" "$inc")
		[ -n "$p" ] || continue
		b=$(basename "$p" .h)
		if [ -n "${has_c[$b]:-}" ]; then
			[ "$b" != "$m" ] && echo "$b"
		elif [[ " $3 " != *" $p "* ]]; then
			reach "$m" "$p" "$3 $p"
		fi
	done < <(includes_of "$f")
}
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for f in "${files[@]}"; do
	[[ $f == tests/* ]] && continue
	b=$(basename "$f"); m=${b%.*}; m=${m%.bpf}
	[ -n "${has_c[$m]:-}" ] || continue
	for d in $(reach "$m" "$f" "$f" | sort -u); do echo "$m $d"; done
done | sort -u > "$edges"
# tsort names the modules of a circle on stderr.
if ! loops=$(tsort < "$edges" 2>&1 >/dev/null) || [ -n "$loops" ]; then
	echo "the modules' include graph has a circle (each one: the modules around it):"
	echo "$loops" | sed -e 's/^tsort: -: input contains a loop:$/  circle:/' -e 's/^tsort: /    /'
	bad=1
fi
[ $bad -eq 0 ] && echo "includes: ${#files[@]} files, $(wc -l < "$edges") module dependencies, no circle, no private header of another folder"
exit $bad
