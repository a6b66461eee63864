"""Golden checkpoints: where they live, the manifest, the atomic store, and the check."""
