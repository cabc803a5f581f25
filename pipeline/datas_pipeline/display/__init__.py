"""Stretches, previews and thumbnails, colour composites."""
