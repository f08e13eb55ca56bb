# Entry points. `make run` and `make test` are the two commands README.md opens with.

SERVICES_DIR ?= .run/services

.PHONY: run test bench services-up services-down cluster cluster-delete fmt clean

## run: start RabbitMQ, PostgreSQL, an api, two workers and the monitor on loopback; submit a sample batch
# The demo is built and then run, because `go run` exits with status 1 when it is interrupted.
run:
	go build -o .run/bin/demo ./app/cmd/demo
	.run/bin/demo

## test: unit, integration and chaos tests against real servers that the script starts
test:
	scripts/test

## bench: end-to-end throughput and latency against a raw RabbitMQ+PostgreSQL baseline
bench:
	scripts/bench

## services-up: start private RabbitMQ and PostgreSQL in $(SERVICES_DIR) and print their URLs
services-up:
	scripts/services install
	scripts/services start $(SERVICES_DIR)

## services-down: stop what services-up started
services-down:
	scripts/services stop $(SERVICES_DIR)

## cluster: create the kind cluster of the dev stack with a local registry on localhost:5001
cluster:
	scripts/kind-cluster create

## cluster-delete: delete that cluster and its registry
cluster-delete:
	scripts/kind-cluster delete

fmt:
	gofmt -w app infra

## clean: stop the demo's servers and delete their data and .run
clean:
	go run ./app/cmd/demo -clean
	rm -rf .run

-include infra/infra.mk
-include app/internal/image/image.mk
-include infra/clustertest/cluster.mk
