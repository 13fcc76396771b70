//! Version metadata (`version.json`), git facts, semver bumps and releases.
