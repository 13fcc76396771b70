//! Clean-up of containers, images, build cache and build folders that the project owns, and nothing else.
