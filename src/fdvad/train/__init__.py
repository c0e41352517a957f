"""Training pieces as plain functions and modules: objectives and batch sources. Loops live in recipes."""
