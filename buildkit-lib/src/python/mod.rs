//! Python tool steps: pinned black/isort format checks, hadolint, and test commands.
