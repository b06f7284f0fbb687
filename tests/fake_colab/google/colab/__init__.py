"""A stand-in for Colab's google.colab, for tests/test_colab.py: only what
notebooks/train_on_colab.ipynb calls, as small as it can be."""
