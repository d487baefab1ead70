# Bytecode for what Lambda runs, shared by the layer's and the functions' Makefiles (template.yaml: BuildMethod makefile).
#
# Hash-based .pyc (PEP 552): a timestamp-based .pyc records its source's mtime, and SAM's zips set every file to
# 1980-01-01, so on Lambda none would match and each cold start would compile from source (and /opt and /var/task are
# read-only: nothing could be cached either). Every __pycache__ the copy brought along is removed first: those are this
# machine's timestamp-based caches.
#
# checked-hash rather than unchecked-hash: Python still reads each source and compares its SipHash with the .pyc's
# (measured by `make bench`: the cost is small against compiling), so a .pyc that does not match its source is never
# run. unchecked-hash would run whatever .pyc it finds, even next to an edited source (a hand-patched build folder,
# `sam local invoke` of an edited .aws-sam/build).
#
# The .pyc format is per minor version (its magic number): the build's Python must be the runtime's, 3.13.

PYTHON ?= python3.13
INVALIDATION_MODE ?= checked-hash
# $(call compile,DIR): DIR's modules, each with its .pyc in __pycache__ beside it.
compile = find "$(1)" -name __pycache__ -type d -prune -exec rm -rf {} + && \
	"$(PYTHON)" -m compileall -q -j 0 --invalidation-mode $(INVALIDATION_MODE) "$(1)"

.PHONY: check-python
check-python:
	@"$(PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { \
		echo "$(PYTHON) is not Python 3.13: the .pyc format must be the python3.13 runtime's (PYENV_VERSION=3.13.0)" >&2; \
		exit 2; }
