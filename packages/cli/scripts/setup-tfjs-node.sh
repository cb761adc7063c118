#!/usr/bin/env bash
# Installs @tensorflow/tfjs-node 4.22.0 into a project's node_modules WITHOUT its usual install-time
# download: the native addon is compiled here against the TensorFlow C library that ships inside the
# `tensorflow-cpu` Python wheel (fetched with pip, so a local or company package index is enough).
# Nothing in package.json or package-lock.json changes; `npm ci` / `npm install` remove tfjs-node again, and
# rerunning this script restores it from the cache in about half a minute. Safe to run any number of times.
#
# Usage: scenimefy setup tfjs-node [--check]     (from the published CLI; it passes the project folder)
#        npm run setup:tfjs-node                 (in the Scenimefy.js checkout)
#        bash setup-tfjs-node.sh [--check]       (the project is SCENIMEFY_PROJECT_DIR, else the current folder)
#   --check   only look for the prerequisites and say what a run would do; downloads and changes nothing.
#
# Exit statuses (those of the scenimefy command): 0 done or nothing to do, 2 usage, 4 a prerequisite is missing
# or a step failed, 5 the wheel could not be downloaded.
#
# Environment knobs:
#   SCENIMEFY_PROJECT_DIR=DIR       the project (a folder with package.json) whose node_modules gets tfjs-node
#   SCENIMEFY_TF_WHEEL=/path/to/tensorflow_cpu-*.whl   use this wheel instead of asking pip for one
#   SCENIMEFY_TF_VERSION=2.21.0     tensorflow-cpu version pip downloads (2.21.0 is the one checked to work)
#   SCENIMEFY_TF_CACHE=DIR          cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/scenimefy); the wheel
#                                   goes to DIR/tf-wheel, the unpacked library to DIR/libtensorflow-cpu-VERSION.
#                                   node_modules links to that library: deleting the cache breaks tfjs-node.
#   SCENIMEFY_TF_FORCE=1            rebuild even when tfjs-node already loads
#   PYTHON=python3                  the Python used for pip and for unpacking the wheel (node-gyp needs it too)
#   CXX=g++, MAKE=make              the C++ compiler and make that node-gyp runs
#   npm_config_nodedir=DIR          Node's headers for node-gyp (default: the prefix of the running node when it
#                                   has include/node/node_api.h, so node-gyp never tries to download them)
# Any pip setting (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, pip.conf) applies to the download.
set -euo pipefail

CHECK_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK_ONLY=1 ;;
    *) printf '[setup-tfjs-node] ERROR: unknown argument %s (only --check is known)\n' "$arg" >&2; exit 2 ;;
  esac
done

TFJS_NODE_VERSION=4.22.0
TF_VERSION="${SCENIMEFY_TF_VERSION:-2.21.0}"
CACHE_ROOT="${SCENIMEFY_TF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scenimefy}"
WHEEL_DIR="$CACHE_ROOT/tf-wheel"
PYTHON="${PYTHON:-python3}"
CXX_TOOL="${CXX:-g++}"
MAKE_TOOL="${MAKE:-make}"

PROJECT_DIR="$(cd "${SCENIMEFY_PROJECT_DIR:-.}" 2>/dev/null && pwd)" ||
  { printf '[setup-tfjs-node] ERROR: project folder %s does not exist.\n' "${SCENIMEFY_PROJECT_DIR:-.}" >&2; exit 2; }
TFJS_NODE_DIR="$PROJECT_DIR/node_modules/@tensorflow/tfjs-node"
STARTED_AT=$SECONDS

say() { printf '[setup-tfjs-node] %s\n' "$*"; }
# die STATUS MESSAGE: 4 for a missing prerequisite or a failed step, 5 for a failed download (see above).
die() { local status="$1"; shift; printf '[setup-tfjs-node] ERROR: %s\n' "$*" >&2; exit "$status"; }

[[ -f "$PROJECT_DIR/package.json" ]] ||
  die 2 "$PROJECT_DIR has no package.json: tfjs-node is installed into a project's node_modules (set SCENIMEFY_PROJECT_DIR, or scenimefy setup tfjs-node --project DIR)."
cd "$PROJECT_DIR"

# Loading it is the only check that matters: the addon, both shared libraries and the rpath must all line up.
tfjs_node_loads() {
  node -e "require('@tensorflow/tfjs-node')" >/dev/null 2>&1
}

if [[ "${SCENIMEFY_TF_FORCE:-0}" != 1 ]] && tfjs_node_loads; then
  say "@tensorflow/tfjs-node already loads in $PROJECT_DIR; nothing to do (SCENIMEFY_TF_FORCE=1 rebuilds)."
  exit 0
fi

# ---------------------------------------------------------------------------------------------------------
# Every prerequisite is checked before anything is downloaded or changed, and all missing ones are named at once.
missing=()
# The library names, the rpath link and the tensorflow-cpu wheel below are those of Linux x86-64.
[[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] ||
  missing+=("this script builds tfjs-node on Linux x86-64 only (this is $(uname -s)-$(uname -m)); elsewhere use \`npm install @tensorflow/tfjs-node@$TFJS_NODE_VERSION\` (it downloads libtensorflow).")
command -v node >/dev/null 2>&1 || missing+=("node not found on PATH.")
command -v npm >/dev/null 2>&1 || missing+=("npm not found on PATH: it installs the tfjs-node package.")
python_found=0
if command -v "$PYTHON" >/dev/null 2>&1; then python_found=1; else
  missing+=("$PYTHON not found: it is needed to unpack the wheel and by node-gyp (set PYTHON=...; Debian: apt-get install python3).")
fi
command -v "$MAKE_TOOL" >/dev/null 2>&1 ||
  missing+=("$MAKE_TOOL not found: compiling the tfjs-node addon needs make (set MAKE=...; Debian: apt-get install build-essential).")
command -v "$CXX_TOOL" >/dev/null 2>&1 ||
  missing+=("$CXX_TOOL not found: compiling the tfjs-node addon needs a C++ compiler (set CXX=...; Debian: apt-get install build-essential).")
if [[ -n "${npm_config_nodedir:-}" ]]; then
  [[ -f "$npm_config_nodedir/include/node/node_api.h" ]] ||
    missing+=("npm_config_nodedir=$npm_config_nodedir holds no include/node/node_api.h (Node's headers for node-gyp).")
elif command -v node >/dev/null 2>&1; then
  node_prefix="$(dirname "$(dirname "$(node -p 'process.execPath')")")"
  if [[ -f "$node_prefix/include/node/node_api.h" ]]; then
    export npm_config_nodedir="$node_prefix"
  else
    missing+=("Node's headers are not in $node_prefix/include/node; set npm_config_nodedir to a folder holding include/node (Debian: apt-get install libnode-dev).")
  fi
fi

# Where the wheel comes from: given, cached, or pip (only then is pip a prerequisite).
WHEEL=""
wheel_plan=""
if [[ -n "${SCENIMEFY_TF_WHEEL:-}" ]]; then
  WHEEL="$SCENIMEFY_TF_WHEEL"
  if [[ ! -f "$WHEEL" ]]; then
    missing+=("SCENIMEFY_TF_WHEEL=$WHEEL does not exist.")
  else
    # The wheel's own version names the unpacked library, so two wheels never share a cache folder.
    TF_VERSION="$(basename "$WHEEL" | sed -n 's/^tensorflow[_-]cpu-\([^-]*\)-.*\.whl$/\1/p')"
    [[ -n "$TF_VERSION" ]] || missing+=("SCENIMEFY_TF_WHEEL=$WHEEL is not named like tensorflow_cpu-VERSION-...whl.")
  fi
  wheel_plan="the wheel given in SCENIMEFY_TF_WHEEL: $WHEEL"
else
  [[ -d "$WHEEL_DIR" ]] && WHEEL="$(find "$WHEEL_DIR" -maxdepth 1 -name "tensorflow_cpu-$TF_VERSION-*.whl" -print -quit)"
  if [[ -n "$WHEEL" ]]; then
    wheel_plan="the cached tensorflow-cpu $TF_VERSION wheel: $WHEEL"
  else
    wheel_plan="pip download tensorflow-cpu==$TF_VERSION into $WHEEL_DIR (about 260 MB)"
    if [[ $python_found == 1 ]] && ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
      missing+=("pip is not available ($PYTHON -m pip); install it, or pass a wheel with SCENIMEFY_TF_WHEEL=/path/to/tensorflow_cpu-$TF_VERSION-*.whl.")
    fi
  fi
fi

if [[ ${#missing[@]} -gt 0 ]]; then
  for m in "${missing[@]}"; do printf '[setup-tfjs-node] missing: %s\n' "$m" >&2; done
  die 4 "${#missing[@]} prerequisite(s) missing (see above); nothing was downloaded or changed."
fi

if [[ $CHECK_ONLY == 1 ]]; then
  say "all prerequisites found; a run would install @tensorflow/tfjs-node@$TFJS_NODE_VERSION into $TFJS_NODE_DIR using"
  say "  $wheel_plan,"
  say "  the TensorFlow C library unpacked into $CACHE_ROOT/libtensorflow-cpu-$TF_VERSION,"
  say "  $PYTHON, $MAKE_TOOL, $CXX_TOOL and Node's headers in $npm_config_nodedir; package.json and package-lock.json stay unchanged."
  say "--check: nothing was downloaded or changed."
  exit 0
fi

# ---------------------------------------------------------------------------------------------------------
if [[ -n "$WHEEL" ]]; then
  say "1/5 using $wheel_plan"
else
  mkdir -p "$WHEEL_DIR"
  say "1/5 $wheel_plan"
  "$PYTHON" -m pip download --no-deps --only-binary=:all: "tensorflow-cpu==$TF_VERSION" -d "$WHEEL_DIR" ||
    die 5 "pip could not download tensorflow-cpu==$TF_VERSION (no package index reachable, or no wheel for this Python/platform); pass one with SCENIMEFY_TF_WHEEL=/path/to/wheel.whl."
  WHEEL="$(find "$WHEEL_DIR" -maxdepth 1 -name "tensorflow_cpu-$TF_VERSION-*.whl" -print -quit)"
  [[ -n "$WHEEL" ]] || die 4 "pip reported success but no tensorflow_cpu-$TF_VERSION-*.whl is in $WHEEL_DIR."
fi

# ---------------------------------------------------------------------------------------------------------
LIBTF_DIR="$CACHE_ROOT/libtensorflow-cpu-$TF_VERSION"
if [[ -f "$LIBTF_DIR/.complete" ]]; then
  say "2/5 TensorFlow C library already unpacked: $LIBTF_DIR"
else
  say "2/5 unpacking the TensorFlow C library and the headers the addon includes into $LIBTF_DIR"
  mkdir -p "$CACHE_ROOT"
  staging="$(mktemp -d "$CACHE_ROOT/.unpack.XXXXXX")"
  # Only the two shared libraries (815 MB) and the C-API headers: the rest of the 1.2 GB wheel is Python.
  if "$PYTHON" - "$WHEEL" "$staging" <<'PY'
import os, shutil, sys, zipfile

wheel, out = sys.argv[1], sys.argv[2]
libs = {'tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'}
inc = 'tensorflow/include/'
headers = {inc + h for h in (
    'tensorflow/c/c_api.h', 'tensorflow/c/c_api_macros.h', 'tensorflow/c/eager/c_api.h',
    'tensorflow/c/tf_attrtype.h', 'tensorflow/c/tf_buffer.h', 'tensorflow/c/tf_datatype.h',
    'tensorflow/c/tf_status.h', 'tensorflow/c/tf_tensor.h', 'tensorflow/c/tf_tstring.h',
    'tensorflow/core/platform/ctstring.h', 'tensorflow/core/platform/ctstring_internal.h',
    'tsl/platform/ctstring.h', 'tsl/platform/ctstring_internal.h', 'xla/tsl/c/tsl_status.h')}
with zipfile.ZipFile(wheel) as zf:
    names = set(zf.namelist())
    missing = sorted((libs | headers) - names)
    if missing:
        sys.exit(f'{wheel}: this wheel lacks {", ".join(missing)}; use tensorflow-cpu 2.21.0')
    for name in sorted(libs | headers):
        dest = os.path.join(out, 'lib', os.path.basename(name)) if name in libs else \
            os.path.join(out, 'include', name[len(inc):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with zf.open(name) as src, open(dest, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
  then
    touch "$staging/.complete"
  else
    rm -rf "$staging"
    die 4 "could not unpack $WHEEL (see above); delete it to download it again, or pass another with SCENIMEFY_TF_WHEEL."
  fi
  rm -rf "$LIBTF_DIR"
  mv "$staging" "$LIBTF_DIR"
fi

# ---------------------------------------------------------------------------------------------------------
say "3/5 npm install --no-save --ignore-scripts @tensorflow/tfjs-node@$TFJS_NODE_VERSION (package files stay unchanged)"
# Only the files that exist: a missing npm-shrinkwrap.json made cat fail, and with pipefail `set -e` ended the script
# here without a word.
manifest_digest() {
  local f
  for f in package.json package-lock.json npm-shrinkwrap.json; do
    if [[ -f "$f" ]]; then cat "$f"; fi
  done | cksum
}
digest_before="$(manifest_digest)"
# --ignore-scripts: its install script would try to download libtensorflow; we build the addon ourselves below.
npm install --no-save --ignore-scripts --no-audit --no-fund "@tensorflow/tfjs-node@$TFJS_NODE_VERSION"
[[ "$(manifest_digest)" == "$digest_before" ]] ||
  die 4 "npm changed package.json or package-lock.json although --no-save was given; review with git diff."
[[ -f "$TFJS_NODE_DIR/package.json" ]] || die 4 "npm did not place @tensorflow/tfjs-node in $TFJS_NODE_DIR."
installed_version="$(node -p "require('$TFJS_NODE_DIR/package.json').version")"
[[ "$installed_version" == "$TFJS_NODE_VERSION" ]] ||
  die 4 "found @tensorflow/tfjs-node $installed_version in node_modules, expected $TFJS_NODE_VERSION."

# ---------------------------------------------------------------------------------------------------------
say "4/5 linking the library into $TFJS_NODE_DIR/deps"
deps="$TFJS_NODE_DIR/deps"
rm -rf "$deps"
mkdir -p "$deps/lib"
ln -s "$LIBTF_DIR/include" "$deps/include"
ln -s "$LIBTF_DIR/lib/libtensorflow_cc.so.2" "$deps/lib/libtensorflow_cc.so.2"
ln -s "$LIBTF_DIR/lib/libtensorflow_framework.so.2" "$deps/lib/libtensorflow_framework.so.2"
# binding.gyp links -ltensorflow -ltensorflow_framework; install.js looks for the 2.9.1 names before downloading.
for alias in libtensorflow.so libtensorflow.so.2 libtensorflow.so.2.9.1; do
  ln -s libtensorflow_cc.so.2 "$deps/lib/$alias"
done
for alias in libtensorflow_framework.so libtensorflow_framework.so.2.9.1; do
  ln -s libtensorflow_framework.so.2 "$deps/lib/$alias"
done
# Makes a later `npm rebuild @tensorflow/tfjs-node` (install.js) compile from source instead of fetching a
# prebuilt addon made for libtensorflow 2.9.1.
printf '{"tf-lib": "file://%s"}\n' "$LIBTF_DIR" >"$TFJS_NODE_DIR/scripts/custom-binary.json"

# ---------------------------------------------------------------------------------------------------------
say "5/5 compiling the addon (node-pre-gyp install --build-from-source)"
# This is what tfjs-node's install.js runs once deps/ is in place. `npm rebuild @tensorflow/tfjs-node` would get
# there too (npm 11.19 runs a package's script when the rebuild names it), but calling node-pre-gyp directly
# does not depend on npm's install-script approval rules (allowScripts) and leaves tfjs-node's package.json alone.
# npm_config_nodedir was checked (or set from node's prefix) with the prerequisites above.
if [[ -z "${npm_config_node_gyp:-}" ]]; then
  npm_cli="$(readlink -f "$(command -v npm)")"
  bundled_gyp="$(dirname "$(dirname "$npm_cli")")/node_modules/node-gyp/bin/node-gyp.js"
  if [[ -f "$bundled_gyp" ]]; then export npm_config_node_gyp="$bundled_gyp"; fi
fi
node_pre_gyp="$(node -p "require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp', { paths: ['$TFJS_NODE_DIR'] })")" ||
  die 4 "@mapbox/node-pre-gyp (a dependency of tfjs-node) is missing from node_modules."
(cd "$TFJS_NODE_DIR" && node "$node_pre_gyp" install --build-from-source) ||
  die 4 "compiling the tfjs-node addon failed (see the compiler output above)."

# ---------------------------------------------------------------------------------------------------------
say "verifying: loading @tensorflow/tfjs-node and running a matMul"
node -e "
const tf = require('@tensorflow/tfjs-node');
const a = tf.tensor2d([1, 2, 3, 4], [2, 2]);
const got = Array.from(tf.matMul(a, a).dataSync());
const want = [7, 10, 15, 22];
if (tf.getBackend() !== 'tensorflow' || got.some((v, i) => v !== want[i])) {
  console.error('unexpected result on backend ' + tf.getBackend() + ': ' + got);
  process.exit(1);
}
console.log('tfjs-node ' + tf.version['tfjs-node'] + ', tfjs-core ' + tf.version['tfjs-core'] +
  ', TensorFlow C library ' + tf.backend().binding.TF_Version + ': matMul ok');
" || die 4 "the addon was built but loading it or running an op failed (see above)."

say "done in $((SECONDS - STARTED_AT)) s. Undo: rm -rf $TFJS_NODE_DIR (or npm ci)."
