"""Hostile input, faults and long runs (issue 7): the bad-input corpus driven through every command,
kill tests, fuzzing of the ONNX importer and the JSON loader, and the soak test."""
