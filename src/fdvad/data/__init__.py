"""Data: speech synthesis, generated noise, labelled scenes."""
