"""The Compose stack in real containers: podman settings, stand-in base images, the Dockerfile's images."""
