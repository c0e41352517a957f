"""Voice activity detection: inference, post-processing, output formats."""
