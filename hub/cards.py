"""A model card's license, read and set with `huggingface_hub.ModelCard` (the Hub's own YAML handling)."""

from __future__ import annotations

from pathlib import Path


def card_license(card: Path) -> str | None:
    """The `license:` of a README.md model card's YAML header, or None when the card or the field is missing."""
    from huggingface_hub import ModelCard

    if not card.is_file():
        return None
    return ModelCard.load(card).data.license


def with_license(text: str, license_name: str) -> str:
    """`text` (a card, possibly empty) with `license: license_name` in its YAML header."""
    from huggingface_hub import ModelCard

    card = ModelCard(text, ignore_metadata_errors=True)
    card.data.license = license_name
    return str(card)


def with_base_model(text: str, base_model: str, relation: str) -> str:
    """`text` (a card) with `base_model` and `base_model_relation` (the Hub's model tree: `quantized`, ...) set."""
    from huggingface_hub import ModelCard

    card = ModelCard(text, ignore_metadata_errors=True)
    card.data.base_model = base_model
    card.data.base_model_relation = relation
    return str(card)
