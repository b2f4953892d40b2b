"""One module per ``hf-quads`` command; see :mod:`hf_quads.cli`."""
