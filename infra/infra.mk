# Pulumi entry points for the infra program; the root Makefile includes
# this file. Run them from the repository root, where Pulumi.yaml is.
#
#   make preview    show what `up` would change
#   make up         create or update the stack's cluster objects
#   make destroy    delete every object of the stack
#   make render     write every object as YAML into $(RENDER_DIR)
#   make secrets    give the stack its secret seed, once
#
# Variables: STACK (default dev), PULUMI (the CLI), PULUMI_FLAGS (extra
# flags for preview, up and destroy), RENDER_DIR (default rendered).

STACK ?= dev
PULUMI ?= pulumi
PULUMI_FLAGS ?=
RENDER_DIR ?= rendered
RENDER_STACK ?= $(STACK)-render

.PHONY: stack secrets preview up destroy render

## stack: create the stack $(STACK) if it does not exist yet
stack:
	@$(PULUMI) stack select --create $(STACK) >/dev/null

## secrets: set taskflow:secretSeed to 32 random bytes, encrypted, unless the stack has one
secrets: stack
	@$(PULUMI) config get --stack $(STACK) taskflow:secretSeed >/dev/null 2>&1 || \
		$(PULUMI) config set --stack $(STACK) --secret taskflow:secretSeed "$$(openssl rand -hex 32)"

## preview: show the changes `up` would make to stack $(STACK)
preview: secrets
	$(PULUMI) preview --stack $(STACK) --diff $(PULUMI_FLAGS)

## up: apply stack $(STACK) to its cluster
up: secrets
	$(PULUMI) up --stack $(STACK) --yes $(PULUMI_FLAGS)

## destroy: delete every object of stack $(STACK) from its cluster
destroy: stack
	$(PULUMI) destroy --stack $(STACK) --yes $(PULUMI_FLAGS)

## render: write the objects of stack $(STACK) as YAML files to $(RENDER_DIR); Secrets appear in plain text
# A throwaway stack with a copy of $(STACK)'s config keeps the render state
# apart from the real one, and removing it afterwards leaves no state behind.
# The provider refuses a kubeconfig in render mode and would take one from
# KUBECONFIG, so it is unset.
render: secrets
	rm -rf $(RENDER_DIR)
	-@$(PULUMI) stack rm --stack $(RENDER_STACK) --force --yes >/dev/null 2>&1
	$(PULUMI) stack init $(RENDER_STACK) --copy-config-from $(STACK) --no-select
	env -u KUBECONFIG TASKFLOW_RENDER_DIR="$(abspath $(RENDER_DIR))" $(PULUMI) up --stack $(RENDER_STACK) --yes --skip-preview; \
		status=$$?; $(PULUMI) stack rm --stack $(RENDER_STACK) --force --yes >/dev/null; exit $$status
	@echo "rendered manifests in $(RENDER_DIR)/ (they include Secrets in plain text)"
