"""Models implemented in this repository (as opposed to wrappers around external libraries)."""
