"""Deployment files: the entrypoint, compose and Kubernetes manifests, the examples and the docs."""
