#!/usr/bin/env bash
# Regenerate the locks of exact versions (with hashes) from pyproject.toml's ranges:
#   base.lock = `pip install .`, and one lock per extra: dev.lock = `pip install ".[dev]"`,
#   stack.lock = `pip install ".[stack]"`, django.lock = `pip install ".[django]"`.
# For Python 3.11 on Linux x86_64 (manylinux_2_28), whatever machine runs this; resolved
# against PyPI only, so no machine's local mirror or path ends up in a lock. The extras are
# compiled with base.lock as a constraint: installing one never changes a base version.
# A lock update is a deliberate change: run `dvc repro` after it and commit dvc.lock too.
# Arguments go to every `uv pip compile`: e.g. --upgrade (everything to the newest allowed)
# or --upgrade-package pandas. Without them, versions already in a lock are kept.
# uv: `pip install uv==0.13.9` (the version that wrote these files).
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --custom-compile-command "bash requirements/compile.sh" --quiet "$@")
uv pip compile pyproject.toml "${common[@]}" -o requirements/base.lock
uv pip compile pyproject.toml --extra dev -c requirements/base.lock "${common[@]}" -o requirements/dev.lock
uv pip compile pyproject.toml --extra stack -c requirements/base.lock "${common[@]}" -o requirements/stack.lock
uv pip compile pyproject.toml --extra django -c requirements/base.lock "${common[@]}" -o requirements/django.lock
