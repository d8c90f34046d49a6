"""Run stages and whole runs in this process: the runner, preflight checks."""
