"""Readers for Keras model and weight files. They return plain data (JSON configs, NumPy arrays);
nothing in a file is ever unpickled, evaluated or imported."""
