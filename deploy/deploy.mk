# Infrastructure targets, included by the top-level Makefile (`include deploy/deploy.mk`).
#
#   make synth        CloudFormation for every stage into deploy/cdk.out/ (offline, no credentials)
#   make test-deploy  CDK assertion tests + cfn-lint + checkov on the synthesised templates
#   make diagram      docs/architecture.png and docs/ping-lifecycle.png from deploy/diagrams/
#   make cost         monthly cost of prod at 1M, 10M, 100M pings/day (STAGE=dev for dev)
#
# Each target installs what it needs, once: a venv for the CDK toolchain, another for
# checkov (it pins its own boto3 and friends), and graphviz/nodejs from apt if missing.

DEPLOY_DIR    := deploy
DEPLOY_VENV   := .venv-deploy
CHECKOV_VENV  := .venv-checkov
DEPLOY_PY     := $(DEPLOY_VENV)/bin/python
CDK_OUT       := $(DEPLOY_DIR)/cdk.out
STAGE_TEMPLATES = $(CDK_OUT)/ZeTracking-dev.template.json $(CDK_OUT)/ZeTracking-prod.template.json \
                  $(CDK_OUT)/ZeTracking-account.template.json

# jsii runs on the machine's Node.js; Node 20 works but prints an end-of-life banner.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: synth test-deploy diagram deploy-tools cost

$(DEPLOY_VENV)/.installed: requirements/deploy.txt
	@command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs; }
	@test -x $(DEPLOY_PY) || python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements/deploy.txt
	@touch $@

$(CHECKOV_VENV)/.installed: $(DEPLOY_DIR)/requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check --require-hashes -r $(DEPLOY_DIR)/requirements-checkov.txt
	@touch $@

deploy-tools: $(DEPLOY_VENV)/.installed $(CHECKOV_VENV)/.installed

synth: $(DEPLOY_VENV)/.installed
	rm -rf $(CDK_OUT)
	cd $(DEPLOY_DIR) && ../$(DEPLOY_PY) app.py
	@ls $(STAGE_TEMPLATES)

test-deploy: synth $(CHECKOV_VENV)/.installed
	cd $(DEPLOY_DIR) && ../$(DEPLOY_PY) -m pytest -q -p no:cacheprovider tests
	$(DEPLOY_VENV)/bin/cfn-lint --config-file $(DEPLOY_DIR)/.cfnlintrc -- $(STAGE_TEMPLATES)
	@# Skipped checks live in the templates' metadata (deploy/ze_infra/checkov.py), not here.
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		$(foreach t,$(STAGE_TEMPLATES),-f $(t))

diagram: $(DEPLOY_VENV)/.installed
	@command -v dot >/dev/null || { apt-get update -qq && apt-get install -y -qq graphviz; }
	$(DEPLOY_PY) $(DEPLOY_DIR)/diagrams/render.py docs

cost: $(DEPLOY_VENV)/.installed
	@$(DEPLOY_PY) $(DEPLOY_DIR)/cost.py $(or $(STAGE),prod)
