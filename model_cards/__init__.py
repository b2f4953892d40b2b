"""Jinja templates of the model cards hf-quads writes (shipped as hf_quads.model_cards)."""
