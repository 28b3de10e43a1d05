#!/bin/sh
# Install box for one user, without root: for SteamOS, immutable desktops (Silverblue,
# Kinoite, Bazzite), and any host where you cannot or will not install a package.
#
#   ./install.sh                      # into ~/.local
#   ./install.sh --prefix DIR         # into DIR/bin, DIR/share/man, DIR/share/...
#   ./install.sh --uninstall [--prefix DIR]
#
# Run it from the unpacked release tarball (packaging/build makes it). It copies the
# binary to PREFIX/bin/box, the man pages to PREFIX/share/man/man1, and the completions to
# the per-user places bash, zsh and fish look in, records what it wrote in
# PREFIX/share/box/installed-files, and `--uninstall` removes exactly those files.
set -eu

prefix=${HOME:?HOME is not set}/.local
uninstall=false
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }
        prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --uninstall) uninstall=true; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $prefix in
/*) ;;
*) prefix=$(pwd)/$prefix ;;
esac

manifest=$prefix/share/box/installed-files

if $uninstall; then
    if [ ! -f "$manifest" ]; then
        echo "install.sh: nothing to uninstall: $manifest does not exist" >&2
        exit 1
    fi
    while IFS= read -r file; do
        [ -n "$file" ] && rm -f "$file"
    done <"$manifest"
    rm -f "$manifest"
    rmdir "$prefix/share/box" 2>/dev/null || true
    echo "box removed from $prefix (your boxes and images in ~/.local/share/box are kept; \`box rm --all\` and \`box rmi --all\` before uninstalling remove them)"
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$here/bin/box" ]; then
    echo "install.sh: $here/bin/box is missing: run install.sh from the unpacked box tarball" >&2
    exit 1
fi

written=""
put() { # put MODE SOURCE DEST
    mkdir -p "$(dirname "$3")"
    # Through a temporary name: a running box keeps its old executable.
    cp "$2" "$3.tmp.$$"
    chmod "$1" "$3.tmp.$$"
    mv -f "$3.tmp.$$" "$3"
    written="$written$3
"
}

put 755 "$here/bin/box" "$prefix/bin/box"
for page in "$here"/share/man/man1/*.1.gz; do
    put 644 "$page" "$prefix/share/man/man1/$(basename "$page")"
done
put 644 "$here/share/bash-completion/completions/box" "$prefix/share/bash-completion/completions/box"
put 644 "$here/share/zsh/site-functions/_box" "$prefix/share/zsh/site-functions/_box"
put 644 "$here/share/fish/vendor_completions.d/box.fish" "$prefix/share/fish/vendor_completions.d/box.fish"
mkdir -p "$(dirname "$manifest")"
printf '%s' "$written" >"$manifest"

echo "box $("$prefix/bin/box" --version | sed 's/^box //') installed in $prefix/bin/box"

# What the user may still have to do, said once each.
case ":${PATH:-}:" in
*":$prefix/bin:"*) ;;
*) echo "note: $prefix/bin is not in your PATH: add \`export PATH=\"$prefix/bin:\$PATH\"\` to your shell's startup file" ;;
esac
if [ -n "${MANPATH:-}" ]; then
    case ":$MANPATH:" in
    *":$prefix/share/man:"*) ;;
    *) echo "note: MANPATH is set, so man does not look in $prefix/share/man: add \`export MANPATH=\"$prefix/share/man:\$MANPATH\"\`" ;;
    esac
fi
if [ "$prefix" != "$HOME/.local" ]; then
    echo "note: bash completion loads $prefix/share/bash-completion/completions/box only from ~/.local; add \`. $prefix/share/bash-completion/completions/box\` to ~/.bashrc"
    echo "note: fish: add \`set -p fish_complete_path $prefix/share/fish/vendor_completions.d\` to ~/.config/fish/config.fish"
fi
echo "note: zsh: add \`fpath=($prefix/share/zsh/site-functions \$fpath)\` before \`compinit\` in ~/.zshrc"
if [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null || echo 0)" = 1 ]; then
    echo "note: AppArmor restricts user namespaces here: box needs a profile, which needs root once:"
    echo "  $prefix/bin/box doctor --apparmor-profile | sudo tee /etc/apparmor.d/box-\$USER && sudo apparmor_parser -r /etc/apparmor.d/box-\$USER"
fi
echo "next: \`box doctor\` checks what box needs on this host"
