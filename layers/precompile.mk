# Shared by the layers' Makefiles (sam build, BuildMethod: makefile).
# Optional: PYTHON313=/path/to/python3.13 (a CPython 3.13, like Lambda's) precompiles the
# layer. Without it every cold start compiles what it imports: measured here, a handler's
# imports take about 0.8 s without bytecode and 0.35 s with it. unchecked-hash: a zip does
# not keep source mtimes exactly, and these .pyc files never outlive their sources.
PYTHON313 ?=
define precompile
	if [ -n "$(PYTHON313)" ]; then \
		$(PYTHON313) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' \
			|| { echo "PYTHON313=$(PYTHON313) is not a CPython 3.13" >&2; exit 1; }; \
		$(PYTHON313) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)/python"; \
	fi
endef
