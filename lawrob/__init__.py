"""lawrob: the sparse Law of Robustness, put to the test."""
