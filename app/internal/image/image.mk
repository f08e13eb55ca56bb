# Targets that build the service images without a Docker daemon. The root Makefile includes
# this file, so paths are relative to the module root.
#
#   make images            build api, worker and monitor, print digest references, push nothing
#   make images-push       build and push them to IMAGE_REGISTRY
#
# Registry credentials come from the Docker config when present. SOURCE_DATE_EPOCH, when set,
# fixes the image creation time.

IMAGE_REGISTRY ?= localhost:5001
IMAGE_SERVICES ?= api,worker,monitor
IMAGE_FLAGS ?=

.PHONY: images images-push
images:
	go run ./app/cmd/imagebuild -registry '$(IMAGE_REGISTRY)' -services '$(IMAGE_SERVICES)' $(IMAGE_FLAGS)

images-push:
	go run ./app/cmd/imagebuild -registry '$(IMAGE_REGISTRY)' -services '$(IMAGE_SERVICES)' -push $(IMAGE_FLAGS)
