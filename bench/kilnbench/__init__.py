"""kiln benchmark harness: kiln side by side with buildah, skopeo and raw curl.

Standard library only. Entry point: `bench/run` (see bench/README.md).
"""
