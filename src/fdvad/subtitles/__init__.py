"""Subtitles from speech: cue layout (layout.py) and subtitle files (formats.py)."""
