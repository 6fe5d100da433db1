"""The model registry: versions, aliases, promotion and its gates."""
