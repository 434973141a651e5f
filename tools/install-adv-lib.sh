#!/usr/bin/env bash
# Install the optional peer attacks (ALMA, DDN) from adv-lib 0.2.8 into a Python environment.
#
# adv-lib's wheel imports visdom (for its plotting callback only), and visdom 0.2.4 ships only a source
# distribution whose setup.py imports pkg_resources, which current setuptools no longer has. So: build
# visdom's wheel once in a throwaway virtual environment with an older setuptools, then install that
# wheel and adv-lib into the target environment. Nothing is vendored; everything comes from the package
# index pip is configured with.
#
# Usage: tools/install-adv-lib.sh [PYTHON]     (default: .venv/bin/python)
set -euo pipefail
PY="${1:-.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/build"
"$tmp/build/bin/pip" install -q 'setuptools<81' wheel
"$tmp/build/bin/pip" wheel -q --no-deps --no-build-isolation visdom==0.2.4 -w "$tmp/wheels"
"$PY" -m pip install -q "$tmp"/wheels/visdom-*.whl adv-lib==0.2.8
"$PY" -c "import adv_lib.attacks; print('adv-lib', __import__('importlib.metadata').metadata.version('adv-lib'), 'installed')"
