"""Package list for setuptools; all other metadata lives in pyproject.toml.

``model_cards/`` (the Jinja templates of the generated model cards) sits at the top
of the repository and ships inside the wheel as the package ``hf_quads.model_cards``.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["hf_quads*"]), "hf_quads.model_cards"],
    package_dir={"hf_quads.model_cards": "model_cards"},
)
