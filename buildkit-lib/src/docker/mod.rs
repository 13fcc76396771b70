//! Docker image builds with `docker buildx build`, and the steps around them (tags, caches, builders, registries, image facts).
